//! The audit log page: who did what, when and why, a page at a time, oldest first
//! (the order of the hash chain), as `GET /api/v1/audit` serves it.

use std::sync::Arc;

use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Page, PageError, page, time};
use super::session::Signed;
use crate::access::ReadAudit;
use crate::state::GatewayState;
use crate::views::audit::AuditEntryView;

/// Entries per page.
pub const PAGE_SIZE: u32 = 50;

/// Which page.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuditPageQuery {
    /// Entries after this seq (0: from the start).
    #[serde(default)]
    pub after: i64,
}

fn audit_body(entries: &[AuditEntryView], after: i64, offset: i32) -> Markup {
    let next = entries.last().map(|e| e.seq);
    let previous = (after - i64::from(PAGE_SIZE)).max(0);
    html! {
        p.hint { "Entries after #" (after) ", oldest first. Every entry is hash-chained to the one before it." }
        table #audit-table {
            thead { tr {
                th.n { "#" } th { "when" } th { "who" } th { "what" } th { "subject" } th { "detail" }
            } }
            tbody {
                @for e in entries {
                    tr data-seq=(e.seq) {
                        td.n { (e.seq) }
                        td { (time(e.at, offset)) }
                        td { (e.actor) }
                        td { (e.action) }
                        td { (e.subject) }
                        td { code { (e.detail.to_string()) } }
                    }
                }
            }
        }
        p #audit-paging {
            @if after > 0 { a #audit-previous href={"/audit?after=" (previous)} { "← earlier" } " " }
            @if let (Some(next), true) = (next, entries.len() == PAGE_SIZE as usize) {
                a #audit-next href={"/audit?after=" (next)} { "later →" }
            } @else {
                span.hint { "end of the log" }
            }
        }
    }
}

/// The audit log page.
pub async fn audit_page(
    signed: Signed<ReadAudit>,
    State(state): State<Arc<GatewayState>>,
    Query(query): Query<AuditPageQuery>,
) -> Result<Markup, PageError> {
    let after = query.after.max(0);
    let entries: Vec<AuditEntryView> = state
        .store
        .audit_entries(after, PAGE_SIZE)
        .await?
        .into_iter()
        .map(AuditEntryView::from)
        .collect();
    let offset = state.config.utc_offset_minutes(state.clock.now());
    Ok(page(
        &Page {
            operator: &signed.operator,
            banners: &signed.banners,
            title: "Audit log",
            current: "/audit",
        },
        audit_body(&entries, after, offset),
    ))
}
