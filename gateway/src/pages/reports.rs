//! The report pages: allocation (DOMAIN R1: the table and the chart of required
//! against in service per agency, and the daily snapshots' trend) and uploads (DOMAIN
//! R2: overdue recordings first, then the counts per agency, officer and device). They
//! call the same read models as the API (`views::allocation::AllocationSource`,
//! `views::uploads::upload_report`), so they show the same numbers.

use std::sync::Arc;

use axum::extract::State;
use maud::{Markup, html};

use super::chart::{BarPair, bar_chart};
use super::layout::{Page, PageError, duration, maybe_time, page, time};
use super::session::Signed;
use crate::access::ReadReports;
use crate::state::GatewayState;
use crate::views::allocation::{self, AllocationReport, PAGE_TREND_DAYS, TrendDay};
use crate::views::uploads::{OverdueRecording, UploadCounts, UploadReport};

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| v.to_string())
}

fn allocation_body(report: &AllocationReport, trend: &[TrendDay], offset: i32) -> Markup {
    let pairs: Vec<BarPair> = report
        .agencies
        .iter()
        .map(|a| BarPair {
            agency: a.agency.clone(),
            required: a.required,
            in_service: a.in_service,
        })
        .collect();
    let t = &report.total;
    html! {
        p.hint {
            "As of " (time(report.generated_at, offset)) ". Ratios: class A one device per "
            (report.ratios.ratio_a) " officers, class B one per " (report.ratios.ratio_b)
            "; class C by each agency's target."
        }
        div.cards {
            div.card { "Devices to buy" b #total-shortfall { (t.shortfall) } }
            div.card { "Required" b #total-required { (t.required) } }
            div.card { "In service" b #total-in-service { (t.in_service) } }
            div.card { "Compliant" b #total-compliant { (if t.compliant { "yes" } else { "no" }) } }
        }
        (bar_chart(&pairs))
        table #allocation-table {
            thead { tr {
                th { "agency" } th { "class" } th.n { "certified officers" } th.n { "recorders" }
                th.n { "terminals" } th.n { "in service" } th.n { "required" }
                th.n { "shortfall" } th { "compliant" }
            } }
            tbody {
                @for a in &report.agencies {
                    tr data-agency=(a.agency) class=[(a.compliant != Some(true)).then_some("bad")] {
                        td { (a.agency) }
                        td { (a.class.as_str().to_uppercase())
                             @if let Some(target) = a.class_c_target { " (target " (target) ")" } }
                        td.n data-field="certified_officers" { (a.certified_officers) }
                        td.n data-field="recorders" { (a.recorders) }
                        td.n data-field="terminals" { (a.terminals) }
                        td.n data-field="in_service" { (a.in_service) }
                        td.n data-field="required" { (opt(a.required)) }
                        td.n data-field="shortfall" { (opt(a.shortfall)) }
                        td data-field="compliant" {
                            @match (a.compliant, &a.problem) {
                                (_, Some(problem)) => { span.error { (problem) } }
                                (Some(true), _) => { "yes" }
                                _ => { "no" }
                            }
                        }
                    }
                }
                @let u = &report.unassigned;
                tr data-agency="UNASSIGNED" {
                    td { (allocation::UNASSIGNED_LABEL) } td {} td.n {}
                    td.n data-field="recorders" { (u.recorders) }
                    td.n data-field="terminals" { (u.terminals) }
                    td.n data-field="in_service" { (u.in_service) }
                    td.n {} td.n {} td {}
                }
                tr data-agency="TOTAL" {
                    td { strong { "total" } } td {}
                    td.n data-field="certified_officers" { (t.certified_officers) }
                    td.n data-field="recorders" { (t.recorders) }
                    td.n data-field="terminals" { (t.terminals) }
                    td.n data-field="in_service" { (t.in_service) }
                    td.n data-field="required" { (t.required) }
                    td.n data-field="shortfall" { (t.shortfall) }
                    td data-field="compliant" { (if t.compliant { "yes" } else { "no" }) }
                }
            }
        }
        (trend_table(trend))
    }
}

/// The heading cells of a table of unstored recordings (overdue, at risk).
fn unstored_head() -> Markup {
    html! {
        th { "recording" } th { "device" } th { "agency" } th { "officer" }
        th { "case" } th { "ended" } th { "deadline" }
    }
}

/// The cells every table of unstored recordings shows for one.
fn unstored_cells(o: &OverdueRecording, offset: i32) -> Markup {
    html! {
        td { code { (o.recording_id) } }
        td { (o.device_id) }
        td { (opt(o.agency.as_deref())) }
        td { (opt(o.officer.as_deref())) }
        td { (opt(o.case_number.as_deref())) }
        td { (time(o.ended_at, offset)) }
        td { (time(o.deadline, offset)) }
    }
}

/// The daily snapshots (newest first): how the shortfall finance must fund has moved.
fn trend_table(trend: &[TrendDay]) -> Markup {
    html! {
        h2 { "Trend, last " (PAGE_TREND_DAYS) " days" }
        @if trend.is_empty() {
            p.hint #trend-empty { "No daily snapshot yet: the gateway takes one each day." }
        } @else {
            table #allocation-trend {
                thead { tr {
                    th { "day" } th.n { "certified officers" } th.n { "in service" }
                    th.n { "required" } th.n { "devices to buy" } th { "compliant" }
                } }
                tbody {
                    @for d in trend.iter().rev() {
                        tr data-day=(d.day) {
                            td { (d.day) @if d.live { " (live, 实时)" } }
                            td.n data-field="certified_officers" { (d.total.certified_officers) }
                            td.n data-field="in_service" { (d.total.in_service) }
                            td.n data-field="required" { (d.total.required) }
                            td.n data-field="shortfall" { (d.total.shortfall) }
                            td data-field="compliant" {
                                (if d.total.compliant { "yes" } else { "no" })
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The allocation page.
pub async fn allocation_page(
    signed: Signed<ReadReports>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Markup, PageError> {
    let allocation = state.allocation();
    let report = allocation.current().await?;
    let trend = allocation.recent_trend(PAGE_TREND_DAYS).await?;
    let offset = state.config.utc_offset_minutes(state.clock.now());
    Ok(page(
        &Page {
            operator: &signed.operator,
            banners: &signed.banners,
            title: "Allocation",
            current: "/allocation",
        },
        allocation_body(&report, &trend, offset),
    ))
}

fn counts_cells(c: &UploadCounts) -> Markup {
    html! {
        td.n data-field="pending" { (c.pending) }
        td.n data-field="due_soon" { (c.due_soon) }
        td.n data-field="overdue" { (c.overdue) }
        td.n data-field="uploaded_on_time" { (c.uploaded_on_time) }
        td.n data-field="uploaded_late" { (c.uploaded_late) }
    }
}

fn counts_head(first: &str) -> Markup {
    html! {
        thead { tr {
            th { (first) } th.n { "pending" } th.n { "due soon" } th.n { "overdue" }
            th.n { "on time" } th.n { "late" }
        } }
    }
}

fn row_class(c: &UploadCounts) -> Option<&'static str> {
    if c.overdue > 0 {
        Some("bad")
    } else if c.due_soon > 0 {
        Some("warn")
    } else {
        None
    }
}

fn uploads_body(report: &UploadReport, offset: i32) -> Markup {
    let t = &report.total;
    html! {
        p.hint { "States at " (time(report.at, offset)) " (gateway time)." }
        div.cards #upload-totals {
            div.card { "Overdue" b data-field="overdue" { (t.overdue) } }
            div.card { "Due soon" b data-field="due_soon" { (t.due_soon) } }
            div.card { "Pending" b data-field="pending" { (t.pending) } }
            div.card { "On time" b data-field="uploaded_on_time" { (t.uploaded_on_time) } }
            div.card { "Late" b data-field="uploaded_late" { (t.uploaded_late) } }
            div.card { "Clock implausible" b data-field="clock_implausible" { (report.clock_implausible) } }
        }
        h2 { "Overdue recordings" }
        @if report.overdue.is_empty() {
            p.ok #no-overdue { "No recording is overdue." }
        } @else {
            table #overdue-table {
                thead { tr {
                    (unstored_head()) th.n { "late by" } th { "device clock" }
                } }
                tbody {
                    @for o in &report.overdue {
                        tr.bad data-recording=(o.recording_id) {
                            (unstored_cells(o, offset))
                            td.n data-late-ms=(o.late_by_ms) { (duration(o.late_by_ms)) }
                            td data-clock-implausible=(o.clock_implausible) {
                                @if o.clock_implausible { "implausible: counted from its announcement" }
                            }
                        }
                    }
                }
            }
        }
        @if !report.at_risk.is_empty() {
            h2 { "At risk: announced by a lost device, not stored (丢失设备上未上传的录像)" }
            table #at-risk-table {
                thead { tr {
                    (unstored_head())
                } }
                tbody {
                    @for o in &report.at_risk {
                        tr.bad data-recording=(o.recording_id) {
                            (unstored_cells(o, offset))
                        }
                    }
                }
            }
        }
        h2 { "Per agency" }
        table #agency-uploads {
            (counts_head("agency"))
            tbody {
                @for a in &report.agencies {
                    tr data-agency=(a.agency.as_deref().unwrap_or("")) class=[row_class(&a.counts)] {
                        td { (a.agency.as_deref().unwrap_or("(no agency)")) }
                        (counts_cells(&a.counts))
                    }
                }
                tr data-agency="TOTAL" { td { strong { "total" } } (counts_cells(t)) }
            }
        }
        h2 { "Per officer" }
        table #officer-uploads {
            (counts_head("officer"))
            tbody {
                @for o in &report.officers {
                    tr data-officer=(o.officer.as_deref().unwrap_or("")) class=[row_class(&o.counts)] {
                        td { (o.officer.as_deref().unwrap_or("(not named)")) }
                        (counts_cells(&o.counts))
                    }
                }
            }
        }
        h2 { "Per device" }
        table #device-uploads {
            thead { tr {
                th { "device" } th { "agency" } th.n { "pending" } th.n { "due soon" }
                th.n { "overdue" } th.n { "on time" } th.n { "late" } th { "silent since" }
                th { "clock implausible since" }
            } }
            tbody {
                @for d in &report.devices {
                    tr data-device=(d.device_id)
                        class=[row_class(&d.counts).or(d.silent_since.or(d.clock_implausible_since).map(|_| "warn"))] {
                        td { (d.device_id) }
                        td { (opt(d.agency.as_deref())) }
                        (counts_cells(&d.counts))
                        td { (maybe_time(d.silent_since, offset)) }
                        td data-field="clock_implausible_since" { (maybe_time(d.clock_implausible_since, offset)) }
                    }
                }
            }
        }
    }
}

/// The uploads page: overdue recordings first.
pub async fn uploads_page(
    signed: Signed<ReadReports>,
    State(state): State<Arc<GatewayState>>,
) -> Result<Markup, PageError> {
    let report = crate::views::uploads::upload_report(
        &state.store,
        &state.config.policy.deadline,
        state.clock.now(),
        protocol::Millis::MIN,
    )
    .await?;
    let offset = state.config.utc_offset_minutes(state.clock.now());
    Ok(page(
        &Page {
            operator: &signed.operator,
            banners: &signed.banners,
            title: "Uploads",
            current: "/uploads",
        },
        uploads_body(&report, offset),
    ))
}
