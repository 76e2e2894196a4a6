//! The gateway's own figures, read from its `/metrics` (Prometheus text format) on the
//! operator listener: what the gateway counted itself (time spent reading staged
//! files back, refusals by reason) beside what the harness measured from outside.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// How long one scrape may take (the gateway may be under attack when it is asked).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why `/metrics` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The request failed or was not answered 200.
    #[error("GET {url}: {reason}")]
    Http {
        /// The address asked.
        url: String,
        /// Why.
        reason: String,
    },
}

/// One sample: a metric's name, its labels and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric's name (with `_sum`, `_count` or `_bucket` for histograms).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    samples: Vec<Sample>,
}

impl Scrape {
    /// Parses the Prometheus text format; comment lines and lines it cannot read are
    /// skipped (a scrape is a figure, not a contract).
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(parse_line)
            .collect();
        Self { samples }
    }

    /// The sum of `name` over all its label values (0 when absent: a counter that
    /// never moved is not exported by every client library).
    pub fn total(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    }

    /// `name`'s values by the value of `label`.
    pub fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.name == name) {
            let key = s.labels.get(label).cloned().unwrap_or_default();
            *out.entry(key).or_default() += s.value;
        }
        out
    }

    /// Every metric name in the scrape.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.samples.iter().map(|s| s.name.as_str())
    }
}

/// `name{a="x",b="y"} 1.5` or `name 1.5` (an optional timestamp after the value is
/// ignored).
fn parse_line(line: &str) -> Option<Sample> {
    let (head, rest) = match line.find('{') {
        Some(open) => {
            let close = line[open..].find('}')? + open;
            (&line[..close + 1], &line[close + 1..])
        }
        None => line.split_at(line.find(char::is_whitespace)?),
    };
    let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
    let (name, labels) = match head.find('{') {
        Some(open) => (&head[..open], parse_labels(&head[open + 1..head.len() - 1])),
        None => (head, BTreeMap::new()),
    };
    Some(Sample {
        name: name.trim().to_owned(),
        labels,
        value,
    })
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim_start_matches(',').trim().to_owned();
        let after = &rest[eq + 2..];
        // Values escape `"` as `\"`.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else { break };
        out.insert(key, after[..end].replace("\\\"", "\""));
        rest = &after[end + 1..];
    }
    out
}

/// Reads the gateway's `/metrics` on its operator listener `http`.
pub async fn scrape(http: SocketAddr) -> Result<Scrape, ScrapeError> {
    let url = format!("http://{http}/metrics");
    let asked = url.clone();
    let text = tokio::task::spawn_blocking(move || -> Result<String, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(SCRAPE_TIMEOUT))
            .build()
            .into();
        let mut reply = agent.get(&asked).call().map_err(|e| e.to_string())?;
        reply.body_mut().read_to_string().map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|reason| ScrapeError::Http {
        url: url.clone(),
        reason,
    })?;
    Ok(Scrape::parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counters_labels_and_histogram_sums() {
        let text = "# HELP x y\n# TYPE fieldsync_upload_refusals_total counter\n\
            fieldsync_upload_refusals_total{reason=\"busy\"} 3\n\
            fieldsync_upload_refusals_total{reason=\"stalled\"} 2\n\
            fieldsync_recording_readback_seconds_sum 1.25\n\
            fieldsync_recording_readback_seconds_count 4\n\
            odd{a=\"q\\\"uote\",b=\"2\"} 7 1700000000\n\
            not a sample\n";
        let s = Scrape::parse(text);
        assert_eq!(s.total("fieldsync_upload_refusals_total"), 5.0);
        let by = s.by_label("fieldsync_upload_refusals_total", "reason");
        assert_eq!(by.get("busy"), Some(&3.0));
        assert_eq!(by.get("stalled"), Some(&2.0));
        assert_eq!(s.total("fieldsync_recording_readback_seconds_sum"), 1.25);
        assert_eq!(s.by_label("odd", "a").get("q\"uote"), Some(&7.0));
        assert_eq!(s.total("absent"), 0.0);
        assert_eq!(s.names().count(), 5);
    }
}
