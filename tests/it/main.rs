//! Integration tests: one binary (linking each file separately would cost minutes), one module
//! per area. Every test drives the real HTTP app against a real database.

mod helpers;

mod admin;
mod api;
mod audit_samples;
mod browser;
mod browser_counter;
mod browser_integrity;
mod browser_pages;
mod browser_paper;
mod browser_public;
mod browser_staff;
mod case_contact;
mod counter_books;
mod counter_channels;
mod counter_kiosk;
mod crash;
mod edge_security;
mod form_reload;
mod forms;
mod groups;
mod honest_stats;
mod hostile_input;
mod integrity;
mod lifecycle;
mod mail;
mod multi_instance;
mod operations;
mod pages;
mod paper;
mod pg_pool;
mod pg_writer;
mod publish;
mod reports;
mod routes;
mod security;
mod services;
mod services_collect;
mod services_staff;
mod smtp_sink;
mod survey;
