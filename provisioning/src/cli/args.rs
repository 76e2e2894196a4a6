//! The arguments of every command (clap), kept apart from what the commands do, so
//! that `--help` is read in one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The equipment manager's CLI over the fieldsync gateway's admin API.
#[derive(Parser, Debug)]
#[command(
    name = "provisioning",
    version,
    about,
    after_help = "The token comes from FIELDSYNC_TOKEN or --token-file (never from the command \
                  line). Exit codes: 0 done, 1 failed, 2 usage, 3 bad rows (nothing applied), \
                  4 token refused or role not allowed, 5 some rows rejected (--partial applied \
                  the others)."
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
    /// [,unit,post,category,agency,valid_until].
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
    /// Assign a device to an agency and/or an officer; what is not named is kept.
    Assign {
        /// The device id.
        id: String,
        /// The agency.
        #[arg(long, conflicts_with = "clear_agency")]
        agency: Option<String>,
        /// The officer's certificate number.
        #[arg(long, conflicts_with = "clear_officer")]
        officer: Option<String>,
        /// Clear the device's agency.
        #[arg(long)]
        clear_agency: bool,
        /// Clear the device's officer.
        #[arg(long)]
        clear_officer: bool,
        /// Assign an officer who is not certified now (withdrawn, revoked, expired,
        /// auxiliary); the reason says why.
        #[arg(long)]
        force: bool,
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
