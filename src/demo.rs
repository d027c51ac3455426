//! The demo province: a small, realistic unit tree (with two 2025 mergers, so history shows)
//! and a procedure catalogue. Loading it again changes nothing.

pub mod story;

use chrono::NaiveDate;

use crate::audit::Actor;
use crate::db::DbConn;
use crate::secret::ServerSecret;
use crate::units::{self, NewUnit};
use crate::{accounts, api_keys, collector_orgs, procedures};

/// Code of the demo province (root of the tree).
pub const PROVINCE: &str = "SON-HA";
/// Username of the demo administrator.
pub const ADMIN: &str = "admin";
/// Code of the demo collector organisation.
pub const POST_OFFICE: &str = "BUU-DIEN";

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// (code, name vi, name en, kind, parent, valid from, valid to, merged into)
type UnitRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    NaiveDate,
    Option<NaiveDate>,
    Option<&'static str>,
);

fn unit_rows() -> Vec<UnitRow> {
    let start = date(2020, 1, 1);
    vec![
        (
            PROVINCE,
            "Tỉnh Sơn Hà",
            "Son Ha Province",
            "province",
            None,
            start,
            None,
            None,
        ),
        (
            "HCC",
            "Trung tâm Phục vụ hành chính công tỉnh",
            "Provincial Public Administrative Service Centre",
            "centre",
            Some(PROVINCE),
            start,
            None,
            None,
        ),
        (
            "STP",
            "Sở Tư pháp",
            "Department of Justice",
            "department",
            Some(PROVINCE),
            start,
            None,
            None,
        ),
        (
            "SXD",
            "Sở Xây dựng",
            "Department of Construction",
            "department",
            Some(PROVINCE),
            start,
            None,
            None,
        ),
        (
            "SNV",
            "Sở Nội vụ",
            "Department of Home Affairs",
            "department",
            Some(PROVINCE),
            start,
            None,
            None,
        ),
        (
            "SNNMT",
            "Sở Nông nghiệp và Môi trường",
            "Department of Agriculture and Environment",
            "department",
            Some(PROVINCE),
            date(2025, 3, 1),
            None,
            None,
        ),
        (
            "STNMT",
            "Sở Tài nguyên và Môi trường",
            "Department of Natural Resources and Environment",
            "department",
            Some(PROVINCE),
            start,
            Some(date(2025, 2, 28)),
            Some("SNNMT"),
        ),
        (
            "SNNPTNT",
            "Sở Nông nghiệp và Phát triển nông thôn",
            "Department of Agriculture and Rural Development",
            "department",
            Some(PROVINCE),
            start,
            Some(date(2025, 2, 28)),
            Some("SNNMT"),
        ),
        (
            "P-AN-HOA",
            "UBND phường An Hòa",
            "An Hoa Ward People's Committee",
            "commune",
            Some(PROVINCE),
            start,
            None,
            None,
        ),
        (
            "X-TAN-LAP",
            "UBND xã Tân Lập",
            "Tan Lap Commune People's Committee",
            "commune",
            Some(PROVINCE),
            start,
            None,
            None,
        ),
        (
            "X-BINH-MINH",
            "UBND xã Bình Minh",
            "Binh Minh Commune People's Committee",
            "commune",
            Some(PROVINCE),
            date(2025, 7, 1),
            None,
            None,
        ),
        (
            "X-BINH-AN",
            "UBND xã Bình An",
            "Binh An Commune People's Committee",
            "commune",
            Some(PROVINCE),
            start,
            Some(date(2025, 6, 30)),
            Some("X-BINH-MINH"),
        ),
        (
            "X-MINH-THANH",
            "UBND xã Minh Thành",
            "Minh Thanh Commune People's Committee",
            "commune",
            Some(PROVINCE),
            start,
            Some(date(2025, 6, 30)),
            Some("X-BINH-MINH"),
        ),
    ]
}

/// (code, name vi, name en, sector)
const PROCEDURES: &[(&str, &str, &str, &str)] = &[
    (
        "LLTP-01",
        "Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam",
        "Issuing a criminal record certificate to a Vietnamese citizen",
        "Tư pháp",
    ),
    (
        "CT-01",
        "Chứng thực bản sao từ bản chính",
        "Certifying a copy from the original",
        "Tư pháp",
    ),
    (
        "HT-KS",
        "Đăng ký khai sinh",
        "Birth registration",
        "Hộ tịch",
    ),
    (
        "HT-KH",
        "Đăng ký kết hôn",
        "Marriage registration",
        "Hộ tịch",
    ),
    (
        "XD-GPXD",
        "Cấp giấy phép xây dựng nhà ở riêng lẻ",
        "Building permit for a private house",
        "Xây dựng",
    ),
    (
        "DD-GCN",
        "Cấp Giấy chứng nhận quyền sử dụng đất lần đầu",
        "First issue of a land use right certificate",
        "Đất đai",
    ),
    (
        "MT-DTM",
        "Thẩm định báo cáo đánh giá tác động môi trường",
        "Appraisal of an environmental impact assessment report",
        "Môi trường",
    ),
    (
        "NV-TD",
        "Thi tuyển, xét tuyển công chức",
        "Civil servant recruitment",
        "Nội vụ",
    ),
];

/// What `sipas demo` prints for a new user.
pub struct DemoInfo {
    pub province_key: String,
    pub admin_username: String,
    pub admin_password: String,
    pub units: usize,
    pub procedures: usize,
}

/// Loads (or refreshes) the demo province.
pub fn load(conn: &mut DbConn, secret: &ServerSecret) -> anyhow::Result<DemoInfo> {
    let rows = unit_rows();
    // Targets of mergers are created first so `merged_into` can point at them.
    let (targets, rest): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.7.is_none());
    for &(code, vi, en, kind, parent, from, to, merged) in targets.into_iter().chain(rest) {
        units::upsert(
            conn,
            &NewUnit {
                code,
                name_vi: vi,
                name_en: en,
                kind,
                parent_code: parent,
                valid_from: from,
                valid_to: to,
                merged_into_code: merged,
            },
        )?;
    }
    for (code, vi, en, sector) in PROCEDURES {
        procedures::upsert(conn, code, vi, en, Some(sector))?;
    }
    let province = units::find_by_code(conn, PROVINCE)?
        .ok_or_else(|| anyhow::anyhow!("demo province missing"))?;
    // The SIPAS questionnaire is issued at the provincial centre's counter; others use the short form.
    if let Some(centre) = units::find_by_code(conn, "HCC")? {
        units::set_counter_form(conn, &centre.id, Some("sipas"))?;
    }
    let province_key = api_keys::ensure_demo_key(conn, secret, &province.id)?;
    // The demo admin's password comes from the server secret, so every run can print it and no
    // two installations share it.
    let admin_password = format!(
        "demo-{}",
        &crate::forms::definition::hex(&secret.mac("demo-admin", ADMIN))[..12]
    );
    if accounts::users::find_by_username(conn, ADMIN)?.is_none() {
        let input = accounts::users::UserInput {
            username: ADMIN.into(),
            display_name: "Quản trị viên (demo)".into(),
            role: accounts::Role::Admin,
            unit_id: None,
            collector_org_id: None,
            active: true,
        };
        accounts::users::create(conn, &Actor::cli(), &input, &admin_password)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // A demo should be usable at once: no forced change of a printed password.
        accounts::users::clear_must_change(conn, ADMIN)?;
    }
    if collector_orgs::find_by_code(conn, POST_OFFICE)?.is_none() {
        collector_orgs::create(
            conn,
            &Actor::cli(),
            POST_OFFICE,
            "Bưu điện tỉnh Sơn Hà",
            "Son Ha Provincial Post Office",
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(DemoInfo {
        province_key,
        admin_username: ADMIN.into(),
        admin_password,
        units: rows.len(),
        procedures: PROCEDURES.len(),
    })
}
