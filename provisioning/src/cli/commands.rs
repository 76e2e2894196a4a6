//! The command line: arguments (clap), then one function per command that calls the
//! admin API and shows the reply.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use provisioning::client::{ApiClient, ClientError, RowProblem, segment};
use provisioning::csvfile::{self, FileKind};
use provisioning::output;
use serde_json::{Value, json};

/// Exit code: bad rows in an import; nothing was applied.
pub(crate) const EXIT_BAD_ROWS: u8 = 3;
/// Exit code: the token is missing, unknown, revoked, or its role may not do this.
pub(crate) const EXIT_DENIED: u8 = 4;

/// The equipment manager's CLI over the fieldsync gateway's admin API.
#[derive(Parser, Debug)]
#[command(
    name = "provisioning",
    version,
    about,
    after_help = "The token comes from FIELDSYNC_TOKEN or --token-file (never from the command \
                  line). Exit codes: 0 done, 1 failed, 2 usage, 3 bad rows (nothing applied), \
                  4 token refused or role not allowed."
)]
pub(crate) struct Cli {
    /// The gateway's operator listener.
    #[arg(
        long,
        env = "FIELDSYNC_GATEWAY",
        default_value = "http://127.0.0.1:4480",
        global = true
    )]
    pub(crate) gateway: String,
    /// File holding the bearer token (for example the PKI folder's admin.token).
    #[arg(long, env = "FIELDSYNC_TOKEN_FILE", global = true)]
    pub(crate) token_file: Option<PathBuf>,
    /// The fleet CA certificate (ca.pem), to verify an https:// gateway.
    #[arg(long, env = "FIELDSYNC_CA", global = true)]
    pub(crate) ca: Option<PathBuf>,
    /// Print the gateway's JSON instead of a table.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Show who the token belongs to and what its role may do.
    Whoami,
    /// Operator tokens (admin only).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Agencies and their allocation class.
    #[command(subcommand)]
    Agencies(AgenciesCommand),
    /// Officers and their enforcement certificates.
    #[command(subcommand)]
    Officers(OfficersCommand),
    /// Devices: enroll, assign, suspend, mark lost, revoke, retire.
    #[command(subcommand)]
    Devices(DevicesCommand),
    /// Reports.
    #[command(subcommand)]
    Reports(ReportsCommand),
}

/// Every change carries a reason; it goes into the audit log.
#[derive(Args, Debug)]
pub(crate) struct Why {
    /// Why (written into the audit log).
    #[arg(long)]
    pub(crate) reason: String,
}

/// A bulk import's options.
#[derive(Args, Debug)]
pub(crate) struct ImportArgs {
    /// The CSV file.
    pub(crate) file: PathBuf,
    /// Apply the good rows even if some are bad (which are reported).
    #[arg(long)]
    pub(crate) partial: bool,
    #[command(flatten)]
    pub(crate) why: Why,
}

/// `tokens …`
#[derive(Subcommand, Debug)]
pub(crate) enum TokensCommand {
    /// Make a token with one role; it is printed once.
    Create {
        /// Its holder's unique name.
        name: String,
        /// admin, equipment_manager, finance or supervisor.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        why: Why,
    },
    /// List tokens.
    List,
    /// Revoke a token: it fails on its very next request.
    Revoke {
        /// The token's name.
        name: String,
        #[command(flatten)]
        why: Why,
    },
}

/// `agencies …`
#[derive(Subcommand, Debug)]
pub(crate) enum AgenciesCommand {
    /// List agencies.
    List,
    /// Create an agency.
    Create {
        /// Unique name.
        name: String,
        /// a, b or c.
        #[arg(long)]
        class: String,
        /// Class C: the target number of devices, set by need.
        #[arg(long)]
        target: Option<u32>,
        #[command(flatten)]
        why: Why,
    },
    /// Set an agency's class (and a class-C target).
    SetClass {
        /// The agency.
        name: String,
        /// a, b or c.
        class: String,
        /// Class C: the target number of devices.
        #[arg(long)]
        target: Option<u32>,
        #[command(flatten)]
        why: Why,
    },
    /// Import agencies from CSV: name,class[,class_c_target].
    Import(ImportArgs),
}

/// `officers …`
#[derive(Subcommand, Debug)]
pub(crate) enum OfficersCommand {
    /// List officers.
    List,
    /// Import a roster CSV: certificate_number,name,certificate_status,auxiliary
    /// [,unit,post,category,agency].
    Import(ImportArgs),
    /// Withdraw a certificate (retirement, transfer, resignation).
    Withdraw {
        /// The certificate number.
        number: String,
        #[command(flatten)]
        why: Why,
    },
    /// Revoke a certificate (dismissal, criminal penalty).
    Revoke {
        /// The certificate number.
        number: String,
        #[command(flatten)]
        why: Why,
    },
    /// Make a withdrawn or revoked certificate valid again.
    Restore {
        /// The certificate number.
        number: String,
        #[command(flatten)]
        why: Why,
    },
}

/// What identifies a new device.
#[derive(Args, Debug)]
pub(crate) struct NewDeviceArgs {
    /// New device id.
    #[arg(long)]
    pub(crate) id: String,
    /// recorder or terminal.
    #[arg(long)]
    pub(crate) kind: String,
    /// Hardware serial.
    #[arg(long)]
    pub(crate) serial: String,
    /// Owning agency.
    #[arg(long)]
    pub(crate) agency: Option<String>,
    /// Certificate life in days (default 365).
    #[arg(long)]
    pub(crate) days: Option<u32>,
    /// Folder to write the certificate files into (made if missing).
    #[arg(long)]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) why: Why,
}

/// One device and a reason.
#[derive(Args, Debug)]
pub(crate) struct DeviceChange {
    /// The device id.
    pub(crate) id: String,
    #[command(flatten)]
    pub(crate) why: Why,
}

/// `devices …`
#[derive(Subcommand, Debug)]
pub(crate) enum DevicesCommand {
    /// List devices.
    List,
    /// Show one device.
    Show {
        /// The device id.
        id: String,
    },
    /// Sign a CSR made on the device and enroll it; writes device.pem and ca.pem.
    EnrollCsr {
        /// The CSR (PEM).
        #[arg(long)]
        csr: PathBuf,
        #[command(flatten)]
        device: NewDeviceArgs,
    },
    /// Enroll a device whose key the gateway makes; writes device.pem, device.key
    /// (mode 0600) and ca.pem.
    EnrollBundle {
        #[command(flatten)]
        device: NewDeviceArgs,
    },
    /// Enroll devices from an enrollment CSV:
    /// device_id,kind,serial,fingerprint,not_after[,agency].
    Import {
        #[command(flatten)]
        import: ImportArgs,
        /// Agency for rows without one.
        #[arg(long)]
        agency: Option<String>,
    },
    /// Assign a device to an agency and/or an officer.
    Assign {
        /// The device id.
        id: String,
        /// The agency.
        #[arg(long)]
        agency: Option<String>,
        /// The officer's certificate number.
        #[arg(long)]
        officer: Option<String>,
        #[command(flatten)]
        why: Why,
    },
    /// Suspend (for example, under repair); it can return to service.
    Suspend(DeviceChange),
    /// Return a suspended device to service.
    Resume(DeviceChange),
    /// Mark lost: it never returns on this certificate.
    Lost(DeviceChange),
    /// Revoke its certificate for good; its live connection is closed at once.
    Revoke(DeviceChange),
    /// Retire it at the end of its life.
    Retire(DeviceChange),
}

/// `reports …`
#[derive(Subcommand, Debug)]
pub(crate) enum ReportsCommand {
    /// The allocation report (DOMAIN R1), per agency and in total.
    Allocation {
        /// Print CSV instead.
        #[arg(long)]
        csv: bool,
    },
    /// The daily snapshots: the trend and the devices to buy.
    Trend {
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Last day (YYYY-MM-DD).
        #[arg(long)]
        to: Option<String>,
    },
    /// Take today's snapshot now.
    Snapshot,
}

/// How a command ended, for the exit code.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done.
    Done,
    /// An import had bad rows and applied nothing.
    BadRows,
}

const DEVICE_COLUMNS: &[&str] = &[
    "id",
    "kind",
    "serial",
    "status",
    "agency",
    "officer",
    "connected",
];
const AGENCY_COLUMNS: &[&str] = &["name", "class", "class_c_target"];
const OFFICER_COLUMNS: &[&str] = &[
    "certificate_number",
    "name",
    "certificate_status",
    "auxiliary",
    "agency",
];
const TOKEN_COLUMNS: &[&str] = &["name", "role", "created_by", "revoked_at"];
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

fn read_token(cli: &Cli) -> anyhow::Result<String> {
    if let Some(path) = &cli.token_file {
        let text = fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?;
        return Ok(text.trim().to_owned());
    }
    match std::env::var("FIELDSYNC_TOKEN") {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        _ => bail!("no token: set FIELDSYNC_TOKEN or pass --token-file"),
    }
}

/// Connects to the gateway the arguments name.
pub(crate) fn client(cli: &Cli) -> anyhow::Result<ApiClient> {
    let token = read_token(cli)?;
    let ca = match &cli.ca {
        Some(path) => Some(
            fs::read(path).with_context(|| format!("reading the CA file {}", path.display()))?,
        ),
        None => None,
    };
    Ok(ApiClient::new(&cli.gateway, token, ca.as_deref())?)
}

/// Runs the command.
pub(crate) fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    let api = client(cli)?;
    let show = Show { json: cli.json };
    match &cli.command {
        Command::Whoami => {
            let me = api.get("/api/v1/whoami")?;
            show.record(&me, &["name", "role", "permissions"]);
        }
        Command::Tokens(c) => tokens(&api, show, c)?,
        Command::Agencies(c) => return agencies(&api, show, c),
        Command::Officers(c) => return officers(&api, show, c),
        Command::Devices(c) => return devices(&api, show, c),
        Command::Reports(c) => reports(&api, show, c)?,
    }
    Ok(Outcome::Done)
}

#[derive(Clone, Copy)]
struct Show {
    json: bool,
}

impl Show {
    fn list(self, value: &Value, columns: &[&str]) {
        if self.json {
            println!("{}", output::json(value));
        } else {
            let rows = value.as_array().cloned().unwrap_or_default();
            println!("{}", output::table(&rows, columns));
        }
    }

    fn record(self, value: &Value, fields: &[&str]) {
        if self.json {
            println!("{}", output::json(value));
        } else {
            println!("{}", output::record(value, fields));
        }
    }
}

fn tokens(api: &ApiClient, show: Show, command: &TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Create { name, role, why } => {
            let made = api.post(
                "/api/v1/tokens",
                &json!({ "name": name, "role": role, "reason": why.reason }),
            )?;
            show.record(&made, &["name", "role", "token"]);
            if !show.json {
                eprintln!("keep the token secret; it is not shown again");
            }
        }
        TokensCommand::List => show.list(&api.get("/api/v1/tokens")?, TOKEN_COLUMNS),
        TokensCommand::Revoke { name, why } => {
            let path = format!("/api/v1/tokens/{}/revoke", segment(name));
            let done = api.post(&path, &json!({ "reason": why.reason }))?;
            show.record(&done, TOKEN_COLUMNS);
        }
    }
    Ok(())
}

fn agencies(api: &ApiClient, show: Show, command: &AgenciesCommand) -> anyhow::Result<Outcome> {
    match command {
        AgenciesCommand::List => show.list(&api.get("/api/v1/agencies")?, AGENCY_COLUMNS),
        AgenciesCommand::Create {
            name,
            class,
            target,
            why,
        } => {
            let body = json!({ "name": name, "class": class, "class_c_target": target,
                "reason": why.reason });
            show.record(&api.post("/api/v1/agencies", &body)?, AGENCY_COLUMNS);
        }
        AgenciesCommand::SetClass {
            name,
            class,
            target,
            why,
        } => {
            let body = json!({ "class": class, "class_c_target": target, "reason": why.reason });
            let path = format!("/api/v1/agencies/{}/class", segment(name));
            show.record(&api.put(&path, &body)?, AGENCY_COLUMNS);
        }
        AgenciesCommand::Import(args) => {
            return import(
                api,
                show,
                &csvfile::AGENCIES,
                "/api/v1/agencies/import",
                args,
                |_| {},
            );
        }
    }
    Ok(Outcome::Done)
}

fn officers(api: &ApiClient, show: Show, command: &OfficersCommand) -> anyhow::Result<Outcome> {
    let certificate = |number: &str, status: &str, why: &Why| -> anyhow::Result<()> {
        let path = format!("/api/v1/officers/{}/certificate", segment(number));
        let done = api.post(&path, &json!({ "status": status, "reason": why.reason }))?;
        show.record(&done, OFFICER_COLUMNS);
        Ok(())
    };
    match command {
        OfficersCommand::List => show.list(&api.get("/api/v1/officers")?, OFFICER_COLUMNS),
        OfficersCommand::Import(args) => {
            return import(
                api,
                show,
                &csvfile::OFFICERS,
                "/api/v1/officers/import",
                args,
                |_| {},
            );
        }
        OfficersCommand::Withdraw { number, why } => certificate(number, "withdrawn", why)?,
        OfficersCommand::Revoke { number, why } => certificate(number, "revoked", why)?,
        OfficersCommand::Restore { number, why } => certificate(number, "valid", why)?,
    }
    Ok(Outcome::Done)
}

fn devices(api: &ApiClient, show: Show, command: &DevicesCommand) -> anyhow::Result<Outcome> {
    let status = |change: &DeviceChange, to: &str| -> anyhow::Result<()> {
        let path = format!("/api/v1/devices/{}/status", segment(&change.id));
        let done = api.post(&path, &json!({ "status": to, "reason": change.why.reason }))?;
        show.record(&done, DEVICE_COLUMNS);
        Ok(())
    };
    match command {
        DevicesCommand::List => show.list(&api.get("/api/v1/devices")?, DEVICE_COLUMNS),
        DevicesCommand::Show { id } => {
            let path = format!("/api/v1/devices/{}", segment(id));
            show.record(&api.get(&path)?, DEVICE_COLUMNS);
        }
        DevicesCommand::EnrollCsr { csr, device } => {
            let csr_pem = fs::read_to_string(csr)
                .with_context(|| format!("reading the CSR {}", csr.display()))?;
            let mut body = new_device_body(device);
            body["csr_pem"] = Value::from(csr_pem);
            let enrolled = api.post("/api/v1/devices/enroll-csr", &body)?;
            write_certificates(&device.out, &enrolled)?;
            show.record(&enrolled["device"], DEVICE_COLUMNS);
        }
        DevicesCommand::EnrollBundle { device } => {
            let enrolled = api.post("/api/v1/devices/bundle", &new_device_body(device))?;
            write_certificates(&device.out, &enrolled)?;
            show.record(&enrolled["device"], DEVICE_COLUMNS);
        }
        DevicesCommand::Import {
            import: args,
            agency,
        } => {
            return import(
                api,
                show,
                &csvfile::DEVICES,
                "/api/v1/devices/import",
                args,
                |row| {
                    let empty = row.get("agency").is_none_or(|a| a.as_str() == Some(""));
                    if let (Some(agency), true) = (agency, empty) {
                        row.insert("agency".into(), Value::from(agency.clone()));
                    }
                },
            );
        }
        DevicesCommand::Assign {
            id,
            agency,
            officer,
            why,
        } => {
            let path = format!("/api/v1/devices/{}/assign", segment(id));
            let body = json!({ "agency": agency, "officer": officer, "reason": why.reason });
            show.record(&api.post(&path, &body)?, DEVICE_COLUMNS);
        }
        DevicesCommand::Suspend(c) => status(c, "suspended")?,
        DevicesCommand::Resume(c) => status(c, "in_service")?,
        DevicesCommand::Lost(c) => status(c, "lost")?,
        DevicesCommand::Revoke(c) => status(c, "revoked")?,
        DevicesCommand::Retire(c) => status(c, "retired")?,
    }
    Ok(Outcome::Done)
}

fn new_device_body(d: &NewDeviceArgs) -> Value {
    json!({
        "device_id": d.id, "kind": d.kind, "serial": d.serial, "agency": d.agency,
        "days": d.days, "reason": d.why.reason,
    })
}

/// Writes device.pem, ca.pem and (for a bundle) device.key with mode 0600.
fn write_certificates(out: &Path, enrolled: &Value) -> anyhow::Result<()> {
    fs::create_dir_all(out).with_context(|| format!("making {}", out.display()))?;
    let text = |field: &str| enrolled[field].as_str().map(str::to_owned);
    let cert = text("certificate_pem").context("the reply has no certificate")?;
    let ca = text("ca_pem").context("the reply has no CA certificate")?;
    fs::write(out.join("device.pem"), cert)?;
    fs::write(out.join("ca.pem"), ca)?;
    if let Some(key) = text("key_pem") {
        write_secret(&out.join("device.key"), key.as_bytes())?;
    }
    Ok(())
}

fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

fn reports(api: &ApiClient, show: Show, command: &ReportsCommand) -> anyhow::Result<()> {
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

/// Reads a CSV file (with a progress bar), sends its rows in one request, and reports
/// every bad row with its line number.
fn import(
    api: &ApiClient,
    show: Show,
    kind: &FileKind,
    endpoint: &str,
    args: &ImportArgs,
    fill: impl Fn(&mut serde_json::Map<String, Value>),
) -> anyhow::Result<Outcome> {
    let bytes = fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    let bar = ProgressBar::new(lines.saturating_sub(1)).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("reading {}", args.file.display()));
    let parsed = csvfile::read(bytes.as_slice(), kind, || bar.inc(1))
        .with_context(|| format!("{}", args.file.display()))?;
    bar.finish_and_clear();
    if !parsed.problems.is_empty() && !args.partial {
        report_bad_rows(show, &args.file, &parsed.problems);
        return Ok(Outcome::BadRows);
    }
    let mut rows = parsed.rows;
    rows.iter_mut().for_each(&fill);
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(format!(
        "the gateway is checking and applying {} rows",
        rows.len()
    ));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let body = json!({ "rows": rows, "partial": args.partial, "reason": args.why.reason });
    let sent = api.post(endpoint, &body);
    spinner.finish_and_clear();
    match sent {
        Ok(mut report) => {
            let mut rejected: Vec<RowProblem> =
                serde_json::from_value(report["rejected"].take()).unwrap_or_default();
            rejected.extend(parsed.problems);
            rejected.sort_by_key(|r| r.line);
            report["rejected"] = serde_json::to_value(&rejected)?;
            if show.json {
                println!("{}", output::json(&report));
            } else {
                println!(
                    "applied {}, unchanged {}, rejected {}",
                    output::cell(report.get("applied")),
                    output::cell(report.get("unchanged")),
                    rejected.len()
                );
                for r in &rejected {
                    eprintln!("{}:{}: {}", args.file.display(), r.line, r.reason);
                }
            }
            Ok(Outcome::Done)
        }
        Err(ClientError::Refused { status: 422, body }) if body.error == "bad_rows" => {
            let mut rows = body.rows;
            rows.extend(parsed.problems);
            rows.sort_by_key(|r| r.line);
            report_bad_rows(show, &args.file, &rows);
            Ok(Outcome::BadRows)
        }
        Err(e) => Err(e.into()),
    }
}

fn report_bad_rows(show: Show, file: &Path, rows: &[RowProblem]) {
    if show.json {
        println!(
            "{}",
            output::json(&json!({ "applied": 0, "rejected": rows }))
        );
    }
    for r in rows {
        eprintln!("{}:{}: {}", file.display(), r.line, r.reason);
    }
    eprintln!(
        "{} bad row(s); nothing was applied (fix them, or pass --partial to apply the good rows)",
        rows.len()
    );
}
