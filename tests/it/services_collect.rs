//! The collector's use cases called directly, without HTTP (issue #16): samples, batches,
//! keyboard entry, adjudication, undo and corrections of paper forms, and the respondent groups
//! with their campaigns. The same functions the handlers call.

use diesel::prelude::*;
use sipas::accounts::{Actor, Role, users};
use sipas::db::schema::responses;
use sipas::db_run;
use sipas::error::AppError;
use sipas::groups::{CampaignInput, GroupInput, manage};
use sipas::paper::batches::{self, NewBatch};
use sipas::paper::correction::{self, Corrected};
use sipas::paper::disputes::{self, Resolved};
use sipas::paper::entry::{self, Keyed, Saved, Typing};
use sipas::paper::samples::{self, DrawFields};
use sipas::paper::status::CustodyStep;
use sipas::survey::response::ResponseStatus;

use crate::helpers::{TestApp, full_answers};

crate::on_both_databases!(
    batches_are_scoped_to_the_collector,
    keying_adjudication_undo_and_correction,
    two_second_typings_at_once_store_one_response,
    groups_and_campaigns_are_use_cases,
);

/// A user of `role` (in `org` for collectors; agencies at STP), as the use cases take them.
fn actor(app: &TestApp, name: &str, role: Role, org: Option<&str>) -> Actor {
    let conn = &mut app.conn();
    let unit_id = (role == Role::Agency)
        .then(|| sipas::units::find_by_code(conn, "STP").unwrap().unwrap().id);
    let org_id = org.map(|code| {
        sipas::collector_orgs::find_by_code(conn, code)
            .unwrap()
            .unwrap()
            .id
    });
    let user = users::create(
        conn,
        &sipas::audit::Actor::cli(),
        &users::UserInput {
            username: name.into(),
            display_name: format!("Người dùng {name}"),
            role,
            unit_id,
            collector_org_id: org_id,
            active: true,
        },
        "Mat-khau-du-dai-cho-kiem-thu-1",
    )
    .unwrap();
    Actor::of(&user)
}

fn post_office(app: &TestApp) -> String {
    let conn = &mut app.conn();
    sipas::collector_orgs::find_by_code(conn, "BUU-DIEN")
        .unwrap()
        .unwrap()
        .id
}

/// A second collector organisation, for scope checks.
fn other_org(app: &TestApp) -> String {
    let conn = &mut app.conn();
    let id = uuid::Uuid::new_v4().to_string();
    db_run!(conn: {
        diesel::insert_into(sipas::db::schema::collector_orgs::table)
            .values((
                sipas::db::schema::collector_orgs::id.eq(&id),
                sipas::db::schema::collector_orgs::code.eq("VNPOST-2"),
                sipas::db::schema::collector_orgs::name_vi.eq("Bưu điện thứ hai"),
                sipas::db::schema::collector_orgs::name_en.eq("Second post office"),
                sipas::db::schema::collector_orgs::created_at.eq(sipas::db::now()),
            ))
            .execute(conn)
    })
    .unwrap();
    id
}

/// A sample of `quota` forms for STP drawn by `admin`, handed in one batch to the post office
/// (every form keyed twice), delivered and returned; returns the main list's serials.
async fn handed_forms(app: &TestApp, admin: &Actor, quota: &str, seed: &str) -> Vec<String> {
    super::paper::prepare(app);
    let request = DrawFields {
        period: "P1".into(),
        units: "stp".into(),
        quota: quota.into(),
        reserve: "0".into(),
        seed: seed.into(),
        ..DrawFields::default()
    }
    .parse(0.05)
    .expect("a valid request");
    let sample = samples::draw(&app.state, admin.clone(), request)
        .await
        .expect("drawn");
    let batch = batches::create(
        &app.state,
        admin.clone(),
        NewBatch::parse(&sample.id, " stp ", &post_office(app), "Bưu tá", "1", false).unwrap(),
    )
    .await
    .expect("batch created");
    let (_, rows) = samples::worklist(&app.state, admin.clone(), sample.id.clone(), None)
        .await
        .unwrap();
    let serials: Vec<String> = rows
        .into_iter()
        .filter(|r| r.role == "main")
        .map(|r| r.serial)
        .collect();
    for step in [CustodyStep::Delivered, CustodyStep::Returned] {
        let (_, marked) = batches::record(
            &app.state,
            admin.clone(),
            batch.id.clone(),
            step,
            serials.clone(),
        )
        .await
        .unwrap();
        assert_eq!(marked.changed, serials.len());
    }
    serials
}

fn typing(fields: Vec<(String, String)>) -> Typing {
    let mut fields = fields;
    fields.push(("keystrokes".into(), "31".into()));
    Typing::parse(fields, sipas::db::now())
}

fn paper_responses(app: &TestApp) -> i64 {
    let conn = &mut app.conn();
    db_run!(conn: {
        responses::table.filter(responses::channel.eq("paper")).filter(responses::provenance.like("%batch%")).count().get_result(conn)
    })
    .unwrap()
}

fn saved(outcome: Result<Keyed, AppError>) -> Saved {
    match outcome {
        Ok(Keyed::Saved { saved, .. }) => saved,
        other => panic!("not saved: {other:?}"),
    }
}

/// Batches: the typed request is checked at the edge, a collector sees and changes only its own
/// organisation's batches, and an administrator must name the organisation.
async fn batches_are_scoped_to_the_collector(app: TestApp) {
    let admin = actor(&app, "quantri-lo", Role::Admin, None);
    let serials = handed_forms(&app, &admin, "3", "41").await;
    let post = actor(&app, "buudien-lo", Role::Collector, Some("BUU-DIEN"));
    other_org(&app);
    let stranger = actor(&app, "buudien-khac", Role::Collector, Some("VNPOST-2"));

    assert!(
        matches!(
            NewBatch::parse("s", "STP", "", "A", "một nửa", false),
            Err(AppError::InvalidField { ref field, .. }) if field == "double_share"
        ),
        "a share that is not a number is refused at the edge"
    );
    let half = NewBatch::parse("s", "stp", "", "A", "0,5", true).unwrap();
    assert_eq!((half.unit_code.as_str(), half.double_share), ("STP", 0.5));
    assert_eq!(
        NewBatch::parse("s", "STP", "", "A", "7", false)
            .unwrap()
            .double_share,
        1.0
    );

    let overview = batches::overview(&app.state, post.clone()).await.unwrap();
    assert_eq!(overview.batches.len(), 1);
    let batch_id = overview.batches[0].0.id.clone();
    let sample_id = overview.batches[0].0.sample_id.clone();
    assert_eq!(overview.samples.len(), 1, "only the sample it was handed");
    let theirs = batches::overview(&app.state, stranger.clone())
        .await
        .unwrap();
    assert!(theirs.batches.is_empty() && theirs.samples.is_empty());

    let (_, custody) = batches::open(&app.state, post.clone(), batch_id.clone())
        .await
        .unwrap();
    assert_eq!((custody.issued, custody.returned), (3, 3));
    assert!(matches!(
        batches::open(&app.state, stranger.clone(), batch_id.clone()).await,
        Err(AppError::NotFound(_))
    ));
    assert!(matches!(
        batches::record(
            &app.state,
            stranger.clone(),
            batch_id.clone(),
            CustodyStep::Delivered,
            serials.clone()
        )
        .await,
        Err(AppError::NotFound(_))
    ));
    let (_, marked) = batches::record(
        &app.state,
        post.clone(),
        batch_id.clone(),
        CustodyStep::Delivered,
        vec![serials[0].clone(), "AAAA-BBBB-CC".into(), " ".into()],
    )
    .await
    .unwrap();
    assert_eq!(
        (marked.changed, marked.unchanged, marked.unknown),
        (0, 1, vec!["AAAA-BBBB-CC".to_string()]),
        "a returned form stays returned; an unknown serial is reported"
    );

    // Nothing left to hand out of STP; SXD was never handed to this organisation.
    let again = NewBatch::parse(&sample_id, "STP", "", "Bưu tá", "", false).unwrap();
    assert!(matches!(
        batches::create(&app.state, post.clone(), again.clone()).await,
        Err(AppError::Conflict(_))
    ));
    let unhanded = NewBatch::parse(&sample_id, "SXD", "", "Bưu tá", "", false).unwrap();
    assert!(matches!(
        batches::create(&app.state, post.clone(), unhanded).await,
        Err(AppError::NotFound(_))
    ));
    assert!(
        matches!(
            batches::create(&app.state, admin.clone(), again).await,
            Err(AppError::InvalidField { ref field, .. }) if field == "org"
        ),
        "an administrator names the organisation taking the batch"
    );

    // Samples: the stranger sees nothing of it, the post office only its unit.
    assert!(matches!(
        samples::open(&app.state, stranger.clone(), sample_id.clone()).await,
        Err(AppError::NotFound(_))
    ));
    let (_, rows) = samples::worklist(&app.state, post.clone(), sample_id.clone(), None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(matches!(
        samples::print(&app.state, post.clone(), sample_id.clone(), None).await,
        Err(AppError::InvalidField { .. })
    ));
    let home = samples::collector_home(&app.state, post.clone())
        .await
        .unwrap();
    assert_eq!(home.samples.len(), 1);
    assert!(home.members.iter().any(|m| m.username == "buudien-lo"));
}

/// The paper channel's use cases end to end: double entry, a dispute and its adjudication, a
/// blank form, undo, a correction, and the typists' statistics.
async fn keying_adjudication_undo_and_correction(app: TestApp) {
    let admin = actor(&app, "quantri", Role::Admin, None);
    let serials = handed_forms(&app, &admin, "4", "7").await;
    let a = actor(&app, "nhaplieu-a", Role::Collector, Some("BUU-DIEN"));
    let b = actor(&app, "nhaplieu-b", Role::Collector, Some("BUU-DIEN"));
    let judge = actor(&app, "giamsat", Role::Collector, Some("BUU-DIEN"));
    let agency = actor(&app, "coquan", Role::Agency, None);
    let form = app.state.forms.latest("sipas").unwrap();
    let answers = full_answers(&form);

    // The serial first: unknown ones, and forms of no concern to the user, are not found.
    for (who, serial) in [(&a, "ZZZZ-ZZZZ-ZZ"), (&agency, serials[0].as_str())] {
        assert!(matches!(
            entry::open_form(&app.state, who.clone(), serial.to_string()).await,
            Err(AppError::NotFound(_))
        ));
    }
    // Form 1: two agreeing typings by two people → verified, counted once.
    let opened = entry::open_form(&app.state, a.clone(), serials[0].to_lowercase())
        .await
        .unwrap();
    assert!(opened.double_entry);
    let first = entry::save_typing(
        &app.state,
        a.clone(),
        serials[0].clone(),
        typing(answers.clone()),
    );
    assert_eq!(saved(first.await), Saved::AwaitingSecondEntry);
    assert!(
        matches!(
            entry::open_form(&app.state, a.clone(), serials[0].clone()).await,
            Err(AppError::Conflict(_))
        ),
        "the second typing is someone else's (the page says so)"
    );
    assert!(
        matches!(
            entry::save_typing(
                &app.state,
                a.clone(),
                serials[0].clone(),
                typing(answers.clone())
            )
            .await,
            Err(AppError::Conflict(_))
        ),
        "and so does the save, by the same rule"
    );
    let second = entry::save_typing(
        &app.state,
        b.clone(),
        serials[0].clone(),
        typing(answers.clone()),
    );
    assert_eq!(saved(second.await), Saved::Verified);
    assert_eq!(paper_responses(&app), 1);
    assert!(matches!(
        entry::save_typing(
            &app.state,
            judge.clone(),
            serials[0].clone(),
            typing(answers.clone())
        )
        .await,
        Err(AppError::Conflict(_))
    ));

    // Form 2: the typings differ on A1 → disputed until a third person decides.
    let mut other = answers.clone();
    for (k, v) in other.iter_mut() {
        if k == "A1" {
            *v = "2".into();
        }
    }
    saved(
        entry::save_typing(
            &app.state,
            a.clone(),
            serials[1].clone(),
            typing(answers.clone()),
        )
        .await,
    );
    let disputed = entry::save_typing(&app.state, b.clone(), serials[1].clone(), typing(other));
    assert_eq!(saved(disputed.await), Saved::Disputed);
    assert_eq!(
        paper_responses(&app),
        1,
        "a disputed form does not count yet"
    );
    let listed = disputes::list(&app.state, judge.clone()).await.unwrap();
    assert_eq!(
        listed.iter().map(|d| &d.0).collect::<Vec<_>>(),
        vec![&serials[1]]
    );
    assert!(matches!(
        disputes::open(&app.state, a.clone(), serials[1].clone()).await,
        Err(AppError::Forbidden(_))
    ));
    let dispute = disputes::open(&app.state, judge.clone(), serials[1].clone())
        .await
        .unwrap();
    assert_eq!(
        dispute.differences,
        vec![("A1".to_string(), "4".to_string(), "2".to_string())]
    );
    let mut out_of_range = answers.clone();
    out_of_range.push(("A2".into(), "9".into()));
    out_of_range.retain(|(k, v)| k != "A2" || v == "9");
    match disputes::resolve(&app.state, judge.clone(), serials[1].clone(), out_of_range).await {
        Ok(Resolved::Refused(refusal)) => assert!(refusal.problems.contains_key("A2")),
        other => panic!("an out-of-range decision was not refused: {other:?}"),
    }
    assert!(matches!(
        disputes::resolve(&app.state, b.clone(), serials[1].clone(), answers.clone()).await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        disputes::resolve(
            &app.state,
            judge.clone(),
            serials[1].clone(),
            answers.clone()
        )
        .await,
        Ok(Resolved::Saved { .. })
    ));
    assert_eq!(paper_responses(&app), 2);
    assert!(
        matches!(
            disputes::resolve(
                &app.state,
                judge.clone(),
                serials[1].clone(),
                answers.clone()
            )
            .await,
            Err(AppError::Conflict(_))
        ),
        "a form is decided once"
    );

    // Form 3: a blank form needs the typist's confirmation.
    let blank: Vec<(String, String)> = answers
        .iter()
        .map(|(k, v)| {
            if form.question(k).is_some_and(|q| q.kind.is_scale()) {
                (k.clone(), "0".into())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    match entry::save_typing(
        &app.state,
        a.clone(),
        serials[2].clone(),
        typing(blank.clone()),
    )
    .await
    {
        Ok(Keyed::Refused(refusal)) => {
            assert_eq!(refusal.issues[0].0, "_form");
            assert_eq!(refusal.paper.serial, serials[2]);
        }
        other => panic!("blank form accepted: {other:?}"),
    }
    let mut confirmed = blank;
    confirmed.push(("confirm_blank".into(), "1".into()));
    let blank_saved =
        entry::save_typing(&app.state, a.clone(), serials[2].clone(), typing(confirmed));
    assert_eq!(saved(blank_saved.await), Saved::AwaitingSecondEntry);

    // Undo: only the typist's own latest typing; the form can then be keyed again.
    assert!(matches!(
        entry::undo(&app.state, b.clone(), serials[2].clone()).await,
        Err(AppError::Forbidden(_))
    ));
    assert_eq!(
        entry::undo(&app.state, a.clone(), serials[2].clone())
            .await
            .unwrap(),
        serials[2]
    );
    entry::open_form(&app.state, a.clone(), serials[2].clone())
        .await
        .expect("keyed again after the undo");
    // Undoing the typing that verified form 1 takes its response back out of the index.
    entry::undo(&app.state, b.clone(), serials[0].clone())
        .await
        .unwrap();
    assert_eq!(paper_responses(&app), 1);
    let again = entry::save_typing(
        &app.state,
        b.clone(),
        serials[0].clone(),
        typing(answers.clone()),
    );
    assert_eq!(saved(again.await), Saved::Verified);
    assert_eq!(paper_responses(&app), 2);

    // A correction moves the rollups: one A1 answer from 4 to 2.
    let stp = sipas::units::find_by_code(&mut app.conn(), "STP")
        .unwrap()
        .unwrap()
        .id;
    let level = |level: i64| {
        sipas::rollup::stored_count(
            &mut app.conn(),
            |k| k.channel == "paper" && k.unit_id == stp,
            "A1",
            level,
        )
        .unwrap()
    };
    let (fours, twos) = (level(4), level(2));
    let opened = correction::open(&app.state, admin.clone(), serials[0].clone())
        .await
        .unwrap();
    assert!(
        opened
            .current
            .contains(&("A1".to_string(), "4".to_string()))
    );
    assert!(
        matches!(
            correction::open(&app.state, admin.clone(), serials[2].clone()).await,
            Err(AppError::Conflict(_))
        ),
        "only a verified form is corrected"
    );
    let mut corrected = answers.clone();
    for (k, v) in corrected.iter_mut() {
        if k == "A1" {
            *v = "2".into();
        }
    }
    assert!(matches!(
        correction::correct(&app.state, admin.clone(), serials[0].clone(), corrected).await,
        Ok(Corrected::Saved { .. })
    ));
    assert_eq!((level(4), level(2)), (fours - 1, twos + 1));

    // The typists' statistics: names and form counts.
    let stats = entry::typists(&app.state, judge.clone()).await.unwrap();
    let of = |name: &str| {
        stats
            .iter()
            .find(|(n, _)| n.contains(name))
            .map(|(_, s)| s.forms)
    };
    assert_eq!(of("nhaplieu-a"), Some(2));
    assert_eq!(of("nhaplieu-b"), Some(2));
}

/// Two people key the second typing of the same form at the same moment: the group commit
/// decides the pass on the entries as stored, so one typing completes the form and the other is
/// told it was keyed in full. One response, never two, never a failed write.
async fn two_second_typings_at_once_store_one_response(app: TestApp) {
    let admin = actor(&app, "quantri-dua", Role::Admin, None);
    let serials = handed_forms(&app, &admin, "2", "13").await;
    let a = actor(&app, "nhap-1", Role::Collector, Some("BUU-DIEN"));
    let b = actor(&app, "nhap-2", Role::Collector, Some("BUU-DIEN"));
    let c = actor(&app, "nhap-3", Role::Collector, Some("BUU-DIEN"));
    let answers = full_answers(&app.state.forms.latest("sipas").unwrap());
    let serial = serials[0].clone();
    saved(entry::save_typing(&app.state, a, serial.clone(), typing(answers.clone())).await);
    let (by_b, by_c) = tokio::join!(
        entry::save_typing(&app.state, b, serial.clone(), typing(answers.clone())),
        entry::save_typing(&app.state, c, serial.clone(), typing(answers.clone())),
    );
    let outcomes = [by_b, by_c];
    let verified = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                Ok(Keyed::Saved {
                    saved: Saved::Verified,
                    ..
                })
            )
        })
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Err(AppError::Conflict(_))))
        .count();
    assert_eq!((verified, refused), (1, 1), "{outcomes:?}");
    assert_eq!(paper_responses(&app), 1);
}

/// Respondent groups and campaigns: a group is saved through the group commit, a campaign
/// issues one link per invitee and unit, more people can be invited, and including the group
/// in the index moves its stored answers in.
async fn groups_and_campaigns_are_use_cases(app: TestApp) {
    let admin = actor(&app, "quantri-nhom", Role::Admin, None);
    let group = |code: &str, include: bool| GroupInput {
        code: code.into(),
        name_vi: "Đại biểu HĐND".into(),
        name_en: "Council delegates".into(),
        description: String::new(),
        include_in_index: include,
    };
    assert!(matches!(
        manage::save_group(&app.state, admin.clone(), None, group("?", false)).await,
        Err(AppError::InvalidField { .. })
    ));
    let saved = manage::save_group(&app.state, admin.clone(), None, group("db-hdnd", false))
        .await
        .unwrap();
    assert_eq!(saved.code, "DB-HDND");
    assert_eq!(manage::list_groups(&app.state).await.unwrap().len(), 1);

    let today = sipas::calendar::local_day(sipas::db::now(), app.state.policies.utc_offset);
    let input = CampaignInput {
        group_code: "DB-HDND".into(),
        name_vi: "Đợt một".into(),
        name_en: "First round".into(),
        form_code: "sipas".into(),
        starts_on: Some(today),
        ends_on: Some(today + chrono::Duration::days(30)),
        unit_codes: vec!["STP".into(), "SXD".into()],
        invitees: 2,
        ..CampaignInput::default()
    };
    let campaign = manage::create_campaign(&app.state, admin.clone(), input)
        .await
        .unwrap();
    let choices = manage::campaign_choices(&app.state).await.unwrap();
    assert_eq!(choices.campaigns.len(), 1);
    assert!(choices.units.iter().any(|u| u.code == "STP"));
    let (_, links) = manage::campaign_links(&app.state, campaign.id.clone())
        .await
        .unwrap();
    assert_eq!(links.len(), 4, "one link per invitee and unit");
    assert!(matches!(
        manage::invite(&app.state, admin.clone(), campaign.id.clone(), 0).await,
        Err(AppError::InvalidField { .. })
    ));
    let invited = manage::invite(&app.state, admin.clone(), campaign.id.clone(), 1)
        .await
        .unwrap();
    assert_eq!(invited.invitees, 3);
    let (_, links) = manage::campaign_links(&app.state, campaign.id.clone())
        .await
        .unwrap();
    assert_eq!(links.len(), 6);

    // One invitee answers: kept apart from the index until the group is included.
    let form = app.state.forms.latest("sipas").unwrap();
    let answered = sipas::survey::submission::submit(
        &app.state,
        sipas::survey::submission::Answer {
            token: links[0].token.as_str().to_string(),
            fields: full_answers(&form),
            language: sipas::i18n::Lang::Vi,
            channel: sipas::survey::channel::Channel::Link,
            address: "192.0.2.10".into(),
            user_agent: "phone".into(),
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        answered,
        sipas::survey::submission::Submitted::StoredForGroup
    ));
    let status_of_answers = || {
        let conn = &mut app.conn();
        let statuses: Vec<String> = db_run!(conn: {
            responses::table.filter(responses::campaign_id.eq(&campaign.id)).select(responses::status).load(conn)
        })
        .unwrap();
        statuses
            .iter()
            .map(|s| ResponseStatus::parse(s).expect("a group answer status"))
            .collect::<Vec<_>>()
    };
    assert_eq!(status_of_answers(), vec![ResponseStatus::Apart]);
    let report = manage::campaign_report(&app.state, campaign.id.clone(), 1)
        .await
        .unwrap();
    assert_eq!(report.results.total.responses, 1);
    assert_eq!(
        report.results.units.iter().map(|u| u.answered).sum::<u64>(),
        1
    );
    manage::save_group(
        &app.state,
        admin.clone(),
        Some(saved.id.clone()),
        group("DB-HDND", true),
    )
    .await
    .unwrap();
    assert_eq!(status_of_answers(), vec![ResponseStatus::Counted]);
    let (opened, campaigns) = manage::open_group(&app.state, saved.id.clone())
        .await
        .unwrap();
    assert!(opened.include_in_index);
    assert_eq!(campaigns.len(), 1);
    assert!(matches!(
        manage::campaign_report(&app.state, "no-such-campaign".into(), 1).await,
        Err(AppError::NotFound(_))
    ));
}
