//! `reports …`: the allocation report (table, JSON or CSV), its daily trend, and
//! taking today's snapshot.

use provisioning::client::{ApiClient, segment};
use provisioning::output;
use serde_json::{Value, json};

use super::Show;
use super::args::ReportsCommand;

const ALLOCATION_COLUMNS: &[&str] = &[
    "agency",
    "class",
    "certified_officers",
    "recorders",
    "terminals",
    "in_service",
    "required",
    "shortfall",
    "compliant",
    "problem",
];

pub(super) fn reports(api: &ApiClient, show: Show, command: &ReportsCommand) -> anyhow::Result<()> {
    match command {
        ReportsCommand::Allocation { csv: true } => {
            print!("{}", api.get_text("/api/v1/reports/allocation.csv")?);
        }
        ReportsCommand::Allocation { csv: false } => {
            let report = api.get("/api/v1/reports/allocation")?;
            if show.json {
                println!("{}", output::json(&report));
            } else {
                let mut rows = report["agencies"].as_array().cloned().unwrap_or_default();
                let mut total = report["total"].clone();
                total["agency"] = Value::from("TOTAL");
                rows.push(total);
                println!("{}", output::table(&rows, ALLOCATION_COLUMNS));
                println!(
                    "devices to buy: {}",
                    output::cell(report["total"].get("shortfall"))
                );
            }
        }
        ReportsCommand::Trend { from, to } => {
            let mut query = Vec::new();
            if let Some(from) = from {
                query.push(format!("from={}", segment(from)));
            }
            if let Some(to) = to {
                query.push(format!("to={}", segment(to)));
            }
            let path = format!(
                "/api/v1/reports/allocation/snapshots{}{}",
                if query.is_empty() { "" } else { "?" },
                query.join("&")
            );
            let trend = api.get(&path)?;
            if show.json {
                println!("{}", output::json(&trend));
            } else {
                let rows: Vec<Value> = trend["days"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| {
                        let t = &d["total"];
                        json!({ "day": d["day"], "in_service": t["in_service"],
                            "required": t["required"], "devices_to_buy": t["shortfall"],
                            "compliant": t["compliant"] })
                    })
                    .collect();
                let columns = [
                    "day",
                    "in_service",
                    "required",
                    "devices_to_buy",
                    "compliant",
                ];
                println!("{}", output::table(&rows, &columns));
            }
        }
        ReportsCommand::Snapshot => {
            let taken = api.post("/api/v1/reports/allocation/snapshots", &json!({}))?;
            show.record(&taken, &["day", "taken"]);
        }
    }
    Ok(())
}
