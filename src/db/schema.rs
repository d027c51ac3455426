//! The one portable schema for both backends; kept in step with `migrations/*/`.

diesel::table! {
    app_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    units (id) {
        id -> Text,
        code -> Text,
        name_vi -> Text,
        name_en -> Text,
        kind -> Text,
        parent_id -> Nullable<Text>,
        valid_from -> Date,
        valid_to -> Nullable<Date>,
        merged_into_id -> Nullable<Text>,
        counter_form -> Nullable<Text>,
        created_at -> Timestamp,
        invitations_enabled -> Bool,
    }
}

diesel::table! {
    procedures (id) {
        id -> Text,
        code -> Text,
        name_vi -> Text,
        name_en -> Text,
        sector -> Nullable<Text>,
        active -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        unit_id -> Text,
        key_hash -> Text,
        label -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    form_versions (form_code, version) {
        form_code -> Text,
        version -> BigInt,
        kind -> Text,
        content_sha256 -> Text,
        source -> Text,
        loaded_at -> Timestamp,
    }
}

diesel::table! {
    transactions (id) {
        id -> Text,
        unit_id -> Text,
        dossier_code -> Text,
        procedure_id -> Text,
        received_at -> Timestamp,
        due_at -> Nullable<Timestamp>,
        completed_at -> Timestamp,
        email -> Nullable<Text>,
        form_code -> Text,
        form_version -> BigInt,
        rating -> Nullable<BigInt>,
        created_at -> Timestamp,
        mail_opted_out -> Bool,
    }
}

diesel::table! {
    survey_tokens (token_hash) {
        token_hash -> Text,
        transaction_id -> Nullable<Text>,
        unit_id -> Text,
        procedure_id -> Nullable<Text>,
        form_code -> Text,
        form_version -> BigInt,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        spent_at -> Nullable<Timestamp>,
        issuer_network -> Nullable<Text>,
        issuer_device -> Nullable<Text>,
        campaign_id -> Nullable<Text>,
    }
}

diesel::table! {
    responses (id) {
        id -> Text,
        unit_id -> Text,
        procedure_id -> Nullable<Text>,
        form_code -> Text,
        form_version -> BigInt,
        channel -> Text,
        respondent_type -> Nullable<Text>,
        language -> Text,
        issued_at -> Nullable<Timestamp>,
        opened_at -> Nullable<Timestamp>,
        submitted_at -> Timestamp,
        provenance -> Nullable<Text>,
        answers -> Text,
        status -> Text,
        respondent_group_id -> Nullable<Text>,
        campaign_id -> Nullable<Text>,
    }
}

diesel::table! {
    rollup_cells (unit_id, form_code, month, form_version, channel, respondent_type) {
        unit_id -> Text,
        form_code -> Text,
        form_version -> BigInt,
        month -> Date,
        channel -> Text,
        respondent_type -> Text,
        responses -> BigInt,
        counts -> Binary,
    }
}

diesel::table! {
    rollup_procedure_cells (unit_id, form_code, month, procedure_id, form_version) {
        unit_id -> Text,
        form_code -> Text,
        form_version -> BigInt,
        month -> Date,
        procedure_id -> Text,
        responses -> BigInt,
        counts -> Binary,
    }
}

diesel::table! {
    dossier_rollups (unit_id, month) {
        unit_id -> Text,
        month -> Date,
        dossiers -> BigInt,
        rated_unsatisfied -> BigInt,
        late -> BigInt,
        unsatisfied_or_late -> BigInt,
    }
}

diesel::table! {
    collector_orgs (id) {
        id -> Text,
        code -> Text,
        name_vi -> Text,
        name_en -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        display_name -> Text,
        password_hash -> Text,
        role -> Text,
        unit_id -> Nullable<Text>,
        collector_org_id -> Nullable<Text>,
        active -> Bool,
        must_change_password -> Bool,
        created_at -> Timestamp,
        password_changed_at -> Timestamp,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        csrf_token -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Text,
        username -> Text,
        address -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    survey_periods (id) {
        id -> Text,
        code -> Text,
        name_vi -> Text,
        name_en -> Text,
        kind -> Text,
        starts_on -> Date,
        ends_on -> Date,
        status -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        at -> Timestamp,
        actor_id -> Nullable<Text>,
        actor_name -> Text,
        action -> Text,
        object_type -> Text,
        object_id -> Text,
        old_value -> Nullable<Text>,
        new_value -> Nullable<Text>,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> BigInt,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        kind -> Text,
        transaction_id -> Text,
        unit_id -> Text,
        message_id -> Text,
        status -> Text,
        attempts -> BigInt,
        due_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        channel -> Text,
    }
}

diesel::table! {
    phone_contacts (transaction_id) {
        transaction_id -> Text,
        phone -> Text,
    }
}

diesel::table! {
    zalo_tokens (id) {
        id -> Text,
        seed_hash -> Text,
        refresh_token -> Text,
        access_token -> Nullable<Text>,
        access_expires_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    desk_registrations (transaction_id) {
        transaction_id -> Text,
        unit_id -> Text,
        desk -> Text,
        registered_at -> Timestamp,
    }
}

diesel::table! {
    counter_pairings (code_hash) {
        code_hash -> Text,
        unit_id -> Text,
        desk -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    counter_devices (id) {
        id -> Text,
        unit_id -> Text,
        desk -> Text,
        credential_hash -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    samples (id) {
        id -> Text,
        period_id -> Text,
        seed -> BigInt,
        margin -> Double,
        quota -> Nullable<BigInt>,
        reserve_share -> Double,
        by_procedure -> Bool,
        form_code -> Text,
        form_version -> BigInt,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sample_units (sample_id, unit_id) {
        sample_id -> Text,
        unit_id -> Text,
        population -> BigInt,
        required -> BigInt,
        drawn -> BigInt,
        reserve -> BigInt,
    }
}

diesel::table! {
    sample_members (id) {
        id -> Text,
        sample_id -> Text,
        period_id -> Text,
        unit_id -> Text,
        transaction_id -> Text,
        role -> Text,
        position -> BigInt,
        serial -> Text,
    }
}

diesel::table! {
    paper_batches (id) {
        id -> Text,
        code -> Text,
        sample_id -> Text,
        unit_id -> Text,
        collector_org_id -> Text,
        collector_name -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    paper_forms (member_id) {
        member_id -> Text,
        batch_id -> Text,
        status -> Text,
        double_entry -> Bool,
        response_id -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    paper_entries (id) {
        id -> Text,
        member_id -> Text,
        pass -> BigInt,
        typist_id -> Text,
        answers -> Text,
        started_at -> Timestamp,
        saved_at -> Timestamp,
        keystrokes -> BigInt,
    }
}

diesel::table! {
    paper_imports (content_sha256) {
        content_sha256 -> Text,
        file_name -> Text,
        typist_id -> Text,
        rows -> BigInt,
        imported_at -> Timestamp,
    }
}

diesel::table! {
    response_signals (response_id) {
        response_id -> Text,
        unit_id -> Text,
        channel -> Text,
        submitted_at -> Timestamp,
        seconds_from_issue -> Nullable<BigInt>,
        seconds_answering -> Nullable<BigInt>,
        questions_answered -> BigInt,
        straight_line -> Bool,
        same_device -> Bool,
        same_network -> Bool,
        network_hash -> Nullable<Text>,
        burst -> Bool,
        signals -> Text,
        review -> Nullable<Text>,
        reviewed_by -> Nullable<Text>,
        reviewed_at -> Nullable<Timestamp>,
        review_reason -> Nullable<Text>,
    }
}

diesel::table! {
    rating_cases (id) {
        id -> Text,
        unit_id -> Text,
        form_code -> Text,
        form_version -> BigInt,
        overall_level -> BigInt,
        answers -> Text,
        comment -> Nullable<Text>,
        opened_at -> Timestamp,
        due_on -> Date,
        status -> Text,
        closed_at -> Nullable<Timestamp>,
        contact -> Nullable<Text>,
        contact_consented_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    case_actions (id) {
        id -> Text,
        case_id -> Text,
        at -> Timestamp,
        actor_name -> Text,
        note -> Text,
        closes -> Bool,
    }
}

diesel::table! {
    respondent_groups (id) {
        id -> Text,
        code -> Text,
        name_vi -> Text,
        name_en -> Text,
        description -> Text,
        include_in_index -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    campaigns (id) {
        id -> Text,
        group_id -> Text,
        name_vi -> Text,
        name_en -> Text,
        form_code -> Text,
        form_version -> BigInt,
        period_id -> Nullable<Text>,
        starts_on -> Date,
        ends_on -> Date,
        invitees -> BigInt,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    campaign_units (campaign_id, unit_id) {
        campaign_id -> Text,
        unit_id -> Text,
    }
}

diesel::table! {
    campaign_links (id) {
        id -> Text,
        campaign_id -> Text,
        invitee -> BigInt,
        unit_id -> Text,
        token_hash -> Text,
    }
}

diesel::table! {
    releases (id) {
        id -> Text,
        period -> Text,
        sequence -> BigInt,
        created_at -> Timestamp,
        created_by -> Text,
        method_version -> Text,
        note -> Text,
        document -> Text,
        sha256 -> Text,
        signature -> Text,
        public_key -> Text,
        corrects -> Nullable<Text>,
    }
}

diesel::table! {
    token_books (id) {
        id -> Text,
        number -> BigInt,
        unit_id -> Text,
        form_code -> Text,
        form_version -> BigInt,
        size -> BigInt,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    book_stickers (book_id, serial) {
        book_id -> Text,
        serial -> BigInt,
        transaction_id -> Nullable<Text>,
        response_id -> Nullable<Text>,
        rating -> Nullable<BigInt>,
        answered_at -> Nullable<Timestamp>,
        attached_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    kiosk_taps (id) {
        id -> Text,
        unit_id -> Text,
        desk -> Text,
        device_id -> Text,
        face -> BigInt,
        faces -> BigInt,
        follow_up -> Nullable<Text>,
        tapped_at -> Timestamp,
    }
}

diesel::table! {
    kiosk_refusals (device_id, minute) {
        device_id -> Text,
        minute -> Timestamp,
        unit_id -> Text,
        refused -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    app_secrets,
    units,
    procedures,
    api_keys,
    form_versions,
    transactions,
    survey_tokens,
    responses,
    dossier_rollups,
    collector_orgs,
    users,
    sessions,
    login_failures,
    survey_periods,
    audit_events,
    audit_head,
    rollup_cells,
    rollup_procedure_cells,
    outbox,
    phone_contacts,
    zalo_tokens,
    desk_registrations,
    counter_pairings,
    counter_devices,
    token_books,
    book_stickers,
    kiosk_taps,
    kiosk_refusals,
    samples,
    sample_units,
    sample_members,
    paper_batches,
    paper_forms,
    paper_entries,
    paper_imports,
    response_signals,
    rating_cases,
    case_actions,
    respondent_groups,
    campaigns,
    campaign_units,
    campaign_links,
    releases,
);
