//! The case view page (DOMAIN R3): search by case number or enforcement target, then
//! every record and recording in time order with the chain check and every flag;
//! without a search, the open flags across all cases. Supervisors and admins only,
//! like the API; both show the read models of `views::cases` and `views::flags`.

use std::sync::Arc;

use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Page, PageError, duration, maybe_time, page, time};
use super::session::Signed;
use crate::access::ReadCaseContent;
use crate::state::GatewayState;
use crate::views::ViewError;
use crate::views::cases::{
    CaseFlagEntry, CaseView, RecordEntry, RecordingEntry, SubjectKind, TamperEntry, case_view,
    target_view,
};
use crate::views::flags::{
    TamperCountEntry, TwoOfficerEntry, open_case_flags, tamper_counts, tamper_flags,
};

/// The search.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CaseSearch {
    /// A case number.
    #[serde(default)]
    pub case: Option<String>,
    /// An enforcement target.
    #[serde(default)]
    pub target: Option<String>,
}

/// One line of the timeline: a record or a recording, at its gateway time.
enum Line<'a> {
    Record(&'a RecordEntry),
    Recording(&'a RecordingEntry),
}

/// Records and recordings merged in gateway-time order (records first on a tie).
fn timeline(view: &CaseView) -> Vec<Line<'_>> {
    let mut lines: Vec<(i64, u8, Line<'_>)> = view
        .records
        .iter()
        .map(|r| (r.made_at_gateway, 0, Line::Record(r)))
        .chain(
            view.recordings
                .iter()
                .map(|r| (r.started_at, 1, Line::Recording(r))),
        )
        .collect();
    // Stable: equal keys keep the store's order.
    lines.sort_by_key(|(at, kind, _)| (*at, *kind));
    lines.into_iter().map(|(_, _, l)| l).collect()
}

fn search_form(search: &CaseSearch) -> Markup {
    html! {
        form.search method="get" action="/cases" #case-search {
            label for="case" { "Case number " }
            input #case name="case" value=[search.case.as_deref()];
            label for="target" { " or target " }
            input #target name="target" value=[search.target.as_deref()];
            button type="submit" { "Show" }
        }
    }
}

/// The element id of a record's row, from its `<device>/<sequence>`, so a correction
/// and the record it corrects link to each other on the page.
fn anchor(record: &str) -> String {
    format!("record-{}", record.replace('/', "-"))
}

fn record_line(r: &RecordEntry, offset: i32) -> Markup {
    let bad = r.chain_break.is_some() || r.two_officer.is_some();
    html! {
        tr.record.bad[bad] id=(anchor(&format!("{}/{}", r.device_id, r.sequence)))
            data-device=(r.device_id) data-sequence=(r.sequence) {
            td { (time(r.made_at_gateway, offset)) }
            td { "record" }
            td { (r.device_id) " #" (r.sequence) }
            td { (r.stage) }
            td { (r.action_kind)
                 @if r.needs_audio_video { " " span.hint { "(audio-video required)" } } }
            td {
                (r.text)
                @if let Some(c) = &r.correction_of {
                    br; span.hint data-field="correction_of" {
                        "corrects (更正) " a href=(format!("#{}", anchor(c))) { (c) }
                    }
                }
                @if !r.corrected_by.is_empty() {
                    br; span.hint data-field="corrected_by" {
                        "corrected by (已更正) "
                        @for (i, c) in r.corrected_by.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href=(format!("#{}", anchor(c))) { (c) }
                        }
                    }
                }
                @if let Some(l) = &r.location { br; span.hint { (l) } }
            }
            td { (r.officers.join(", ")) }
            td.check {
                @match &r.chain_break {
                    None => { span.ok { "verified" } }
                    Some(b) => { span.flag { "chain" } " " (b) }
                }
                @if let Some(t) = &r.two_officer {
                    br; span.flag { "two-officer" } " " (t.certified) " of " (t.required)
                    " certified"
                    @if !t.not_counted.is_empty() { " (not counted: " (t.not_counted.join(", ")) ")" }
                }
                @if r.clock_implausible {
                    br; span.flag data-field="clock_implausible" { "clock implausible" }
                    " counted from its arrival"
                }
            }
        }
    }
}

fn recording_line(r: &RecordingEntry, offset: i32) -> Markup {
    let bad = matches!(r.state.as_str(), "overdue" | "uploaded_late");
    let warn = r.state == "due_soon";
    html! {
        tr.recording.bad[bad].warn[warn] data-recording=(r.id) {
            td { (time(r.started_at, offset)) }
            td { (r.media) " recording" }
            td { (r.device_id) }
            td {}
            td { "until " (time(r.ended_at, offset)) }
            td { code { (r.id) } br; span.hint { (r.size) " bytes, sha256 " (r.sha256.get(..16).unwrap_or(&r.sha256)) "…" } }
            td { (r.officer.as_deref().unwrap_or("—")) }
            td data-field="state" {
                (r.state)
                @if r.late_by_ms > 0 { " by " (duration(r.late_by_ms)) }
                br; span.hint { "deadline " (time(r.deadline, offset)) }
                @if let Some(s) = r.stored_at { br; span.hint { "stored " (time(s, offset)) } }
                @if r.clock_implausible {
                    br; span.flag data-field="clock_implausible" { "clock implausible" }
                    " counted from its announcement"
                }
                @if r.at_risk {
                    br; span.flag data-field="at_risk" { "at risk (有丢失风险)" }
                    " its device is marked lost"
                }
            }
        }
    }
}

fn case_flags_table(flags: &[CaseFlagEntry], offset: i32) -> Markup {
    html! {
        table #case-flags {
            thead { tr { th { "case" } th { "flag" } th { "about" } th { "due" } th { "raised" } th { "cleared" } th { "detail" } } }
            tbody {
                @for f in flags {
                    tr data-kind=(f.kind) class=[f.cleared_at.is_none().then_some("bad")] {
                        td { a href={"/cases?case=" (urlencode(&f.case_number))} { (f.case_number) } }
                        td { span.flag { (f.kind) } }
                        td { (f.subject) }
                        td { (time(f.due_at, offset)) }
                        td { (time(f.raised_at, offset)) }
                        td { (maybe_time(f.cleared_at, offset)) }
                        td { (f.detail) }
                    }
                }
            }
        }
    }
}

fn tamper_table(flags: &[TamperEntry], offset: i32) -> Markup {
    html! {
        table #tamper-flags {
            thead { tr { th { "flagged" } th { "device" } th { "reason" } th { "case" } th { "target" } th { "text" } } }
            tbody {
                @for t in flags {
                    tr.bad data-id=(t.id) {
                        td { (time(t.flagged_at, offset)) }
                        td { (t.device_id) " #" (t.sequence) }
                        td { span.flag { (t.reason) }
                             @if let Some(e) = t.expected_sequence { " (expected #" (e) ")" } }
                        td { (t.case_number.as_deref().unwrap_or("—")) }
                        td { (t.target.as_deref().unwrap_or("—")) }
                        td { (t.text.as_deref().unwrap_or("—")) }
                    }
                }
            }
        }
    }
}

fn tamper_counts_table(counts: &[TamperCountEntry], offset: i32) -> Markup {
    html! {
        table #tamper-counts {
            thead { tr { th { "device" } th { "breaks beyond the cap" } th { "first" } th { "last" } } }
            tbody {
                @for c in counts {
                    tr.bad data-device=(c.device_id) {
                        td { (c.device_id) }
                        td data-field="breaks" { (c.breaks) }
                        td { (time(c.first_at, offset)) }
                        td { (time(c.last_at, offset)) }
                    }
                }
            }
        }
    }
}

fn two_officer_table(flags: &[TwoOfficerEntry], offset: i32) -> Markup {
    html! {
        table #two-officer-flags {
            thead { tr { th { "flagged" } th { "record" } th { "action" } th.n { "certified" } th.n { "required" } th { "not counted" } } }
            tbody {
                @for f in flags {
                    tr.bad data-device=(f.device_id) data-sequence=(f.sequence) {
                        td { (time(f.flagged_at, offset)) }
                        td { (f.device_id) " #" (f.sequence) }
                        td { (f.action_kind) }
                        td.n { (f.certified) }
                        td.n { (f.required) }
                        td { (f.not_counted.join(", ")) }
                    }
                }
            }
        }
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn view_body(view: &CaseView, offset: i32) -> Markup {
    let s = &view.summary;
    let what = match view.kind {
        SubjectKind::Case => "Case",
        SubjectKind::Target => "Target",
    };
    html! {
        h2 #case-subject { (what) " " (view.subject) }
        @if view.kind == SubjectKind::Target {
            p { "Cases: "
                @for c in &view.cases { a href={"/cases?case=" (urlencode(c))} { (c) } " " } }
        }
        div.cards #case-summary {
            div.card { "Records" b data-field="records" { (s.records) } }
            div.card { "Recordings" b data-field="recordings" { (s.recordings) } }
            div.card { "Chain" b #chain-verified data-verified=(view.chain_verified) {
                (if view.chain_verified { "verified" } else { "BROKEN" }) } }
            div.card { "Tamper flags" b data-field="tamper_flags" { (s.tamper_flags) } }
            div.card { "Two-officer flags" b data-field="two_officer_flags" { (s.two_officer_flags) } }
            div.card { "Missing audio-video" b data-field="missing_audio_video" { (s.missing_audio_video) } }
            div.card { "Archive overdue" b data-field="archive_overdue" { (s.archive_overdue) } }
            div.card { "Overdue recordings" b data-field="overdue_recordings" { (s.overdue_recordings) } }
            div.card { "At risk" b data-field="at_risk_recordings" { (s.at_risk_recordings) } }
            div.card { "Clock implausible" b data-field="clock_implausible" { (s.clock_implausible) } }
        }
        h2 { "Full-process record" }
        table #timeline {
            thead { tr {
                th { "when (gateway time)" } th { "what" } th { "device" } th { "stage" }
                th { "action" } th { "content" } th { "officers" } th { "check" }
            } }
            tbody {
                @for line in timeline(view) {
                    @match line {
                        Line::Record(r) => { (record_line(r, offset)) }
                        Line::Recording(r) => { (recording_line(r, offset)) }
                    }
                }
            }
        }
        @if !view.case_flags.is_empty() {
            h2 { "Full-process flags" }
            (case_flags_table(&view.case_flags, offset))
        }
        @if !view.tamper_flags.is_empty() {
            h2 { "Refused records (possible tampering)" }
            (tamper_table(&view.tamper_flags, offset))
        }
    }
}

/// The case view page.
pub async fn cases_page(
    signed: Signed<ReadCaseContent>,
    State(state): State<Arc<GatewayState>>,
    Query(search): Query<CaseSearch>,
) -> Result<Markup, PageError> {
    let now = state.clock.now();
    let offset = state.config.utc_offset_minutes(now);
    let (store, policy) = (&state.store, &state.config.policy);
    let nonblank = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let body = match (nonblank(&search.case), nonblank(&search.target)) {
        (Some(case), _) => match case_view(store, policy, now, &case).await {
            Ok(view) => view_body(&view, offset),
            Err(ViewError::NotFound(_)) => html! {
                p.error #not-found { "No records, recordings or flags of case " (case) "." }
            },
            Err(e) => return Err(e.into()),
        },
        (None, Some(target)) => match target_view(store, policy, now, &target).await {
            Ok(view) => view_body(&view, offset),
            Err(ViewError::NotFound(_)) => html! {
                p.error #not-found { "No records, recordings or flags of target " (target) "." }
            },
            Err(e) => return Err(e.into()),
        },
        (None, None) => {
            let open = open_case_flags(store).await?;
            let tamper = tamper_flags(store, None).await?;
            let counts = tamper_counts(store).await?;
            let two_officer: Vec<TwoOfficerEntry> = state
                .store
                .two_officer_flags()
                .await?
                .iter()
                .map(TwoOfficerEntry::from)
                .collect();
            html! {
                h2 { "Open full-process flags" }
                @if open.is_empty() { p.ok { "None." } } @else { (case_flags_table(&open, offset)) }
                h2 { "Refused records (possible tampering)" }
                @if tamper.is_empty() { p.ok { "None." } } @else { (tamper_table(&tamper, offset)) }
                @if !counts.is_empty() {
                    h3 { "Devices past their cap of tamper flags (further breaks counted, not kept)" }
                    (tamper_counts_table(&counts, offset))
                }
                h2 { "Two-officer rule breaches" }
                @if two_officer.is_empty() { p.ok { "None." } } @else { (two_officer_table(&two_officer, offset)) }
            }
        }
    };
    Ok(page(
        &Page {
            operator: &signed.operator,
            banners: &signed.banners,
            title: "Case view",
            current: "/cases",
        },
        html! { (search_form(&search)) (body) },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(urlencode("C-2026/7 a"), "C-2026%2F7%20a");
        assert_eq!(urlencode("一"), "%E4%B8%80");
    }
}
