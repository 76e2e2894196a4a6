//! The allocation chart, drawn on the server as SVG (pure): one pair of bars per
//! agency, devices required against devices in service, on one scale.
//!
//! Each pair is a `<g class="bar-pair" data-agency=…>` holding a `rect.required` and a
//! `rect.in-service` whose `data-value` carries the number drawn, so the page's test
//! can check the chart against the report. An agency that cannot be assessed (class C
//! without a target) has an empty required bar and says so in its title.

use maud::{Markup, html};

/// One agency's bars.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BarPair {
    /// The agency.
    pub agency: String,
    /// Devices required; `None` when it cannot be assessed.
    pub required: Option<u32>,
    /// Devices in service.
    pub in_service: u32,
}

const BAR: u32 = 22;
const GAP: u32 = 4;
const GROUP: u32 = 2 * BAR + GAP + 36;
const PLOT: u32 = 220;
const TOP: u32 = 24;
const LEFT: u32 = 40;
const BOTTOM: u32 = 56;

/// Height in pixels of `value` when `max` fills the plot.
fn height(value: u32, max: u32) -> u32 {
    let max = max.max(1);
    (u64::from(value) * u64::from(PLOT) / u64::from(max)) as u32
}

/// The chart of `pairs`, in their order.
pub fn bar_chart(pairs: &[BarPair]) -> Markup {
    let max = pairs
        .iter()
        .flat_map(|p| [p.required.unwrap_or(0), p.in_service])
        .max()
        .unwrap_or(0)
        .max(1);
    let count = u32::try_from(pairs.len()).unwrap_or(u32::MAX);
    let width = LEFT + count.saturating_mul(GROUP).max(GROUP) + 20;
    let base = TOP + PLOT;
    let total_height = base + BOTTOM;
    html! {
        svg #allocation-chart xmlns="http://www.w3.org/2000/svg" role="img"
            width=(width) height=(total_height) viewBox={"0 0 " (width) " " (total_height)}
            aria-label="Devices required against devices in service, per agency" {
            title { "Devices required against devices in service, per agency" }
            // The axis and its maximum.
            line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(base) stroke="#888" {}
            line x1=(LEFT) y1=(base) x2=(width - 10) y2=(base) stroke="#888" {}
            text x=(LEFT - 6) y=(TOP + 4) text-anchor="end" { (max) }
            text x=(LEFT - 6) y=(base) text-anchor="end" { "0" }
            // The legend.
            rect.required x=(LEFT + 8) y="4" width="12" height="12" {}
            text x=(LEFT + 24) y="14" { "required" }
            rect.in-service x=(LEFT + 100) y="4" width="12" height="12" {}
            text x=(LEFT + 116) y="14" { "in service" }
            @for (i, p) in pairs.iter().enumerate() {
                @let x = LEFT + 12 + u32::try_from(i).unwrap_or(0) * GROUP;
                @let req = height(p.required.unwrap_or(0), max);
                @let have = height(p.in_service, max);
                g.bar-pair data-agency=(p.agency) {
                    rect.bar.required x=(x) y=(base - req) width=(BAR) height=(req)
                        data-value=[p.required] {
                        title {
                            (p.agency) ": "
                            @match p.required {
                                Some(r) => { (r) " required" }
                                None => { "required cannot be assessed" }
                            }
                        }
                    }
                    rect.bar.in-service x=(x + BAR + GAP) y=(base - have) width=(BAR)
                        height=(have) data-value=(p.in_service) {
                        title { (p.agency) ": " (p.in_service) " in service" }
                    }
                    text x=(x + BAR) y=(base + 16) text-anchor="middle" { (p.agency) }
                    text x=(x + BAR) y=(base + 32) text-anchor="middle" {
                        (p.required.map_or_else(|| "?".to_owned(), |r| r.to_string()))
                        " / " (p.in_service)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(agency: &str, required: Option<u32>, in_service: u32) -> BarPair {
        BarPair {
            agency: agency.into(),
            required,
            in_service,
        }
    }

    #[test]
    fn one_pair_per_agency_scaled_to_the_largest_value() {
        let svg = bar_chart(&[
            pair("east", Some(10), 5),
            pair("west <&>", None, 2),
            pair("north", Some(4), 4),
        ])
        .into_string();
        assert_eq!(svg.matches("class=\"bar-pair\"").count(), 3);
        assert_eq!(svg.matches("class=\"bar required\"").count(), 3);
        assert_eq!(svg.matches("class=\"bar in-service\"").count(), 3);
        assert!(
            svg.contains("data-agency=\"west &lt;&amp;&gt;\""),
            "escaped"
        );
        // 10 fills the plot; 5 is half of it.
        assert!(svg.contains(&format!("height=\"{PLOT}\" data-value=\"10\"")));
        assert!(svg.contains(&format!("height=\"{}\" data-value=\"5\"", PLOT / 2)));
        assert!(svg.contains("required cannot be assessed"));
    }

    #[test]
    fn an_empty_report_draws_an_empty_chart() {
        let svg = bar_chart(&[]).into_string();
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("bar-pair").count(), 0);
        assert_eq!(height(0, 0), 0);
    }
}
