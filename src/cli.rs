//! The command line: one subcommand per job; every flag also reads a `WEBHOOKS_*` variable.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::client::{self, Client, listen::ListenOptions};
use crate::config::ServeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "webhooks",
    version,
    about = "A one-file webhook appliance for EnableNow events"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: API, portal and delivery workers
    Serve(ServeArgs),
    /// Copy a stopped data file into a new PostgreSQL database (to grow to several nodes)
    Import(ImportArgs),
    #[command(flatten)]
    Client(ClientCommand),
}

/// The subcommands that talk to a running server.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Send one event through a running server (data: the catalog example unless given)
    Trigger(TriggerArgs),
    /// Receive webhooks in this terminal: register as an endpoint, verify and print each one
    Listen(ListenArgs),
    /// Add or list customers
    Customers {
        #[command(subcommand)]
        action: CustomersAction,
    },
    /// List the event types of the catalog (with a customer's API key or the admin token)
    EventTypes(CustomerArgs),
    /// Is the server up: version, engine, node, deliveries waiting and in flight
    Status(AdminArgs),
    /// Liveness, with no credentials: exit 0 when the server's /healthz answers 200 (for a
    /// container's HEALTHCHECK or a monitor), 1 otherwise
    Health {
        #[command(flatten)]
        server: ServerArg,
    },
    /// A customer's endpoints: list, show, enable, disable, delete
    Endpoints {
        #[command(subcommand)]
        action: EndpointsAction,
    },
    /// A customer's delivery log: list (and follow), resend one, recover failures
    Deliveries {
        #[command(subcommand)]
        action: DeliveriesAction,
    },
    /// The operator's portal sessions: `end` signs every operator out (after a leaked token)
    OperatorSessions {
        #[command(subcommand)]
        action: OperatorSessionsAction,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
    /// Save a consistent copy of the running server's data file
    Backup {
        /// Where to write it (never the live data file; readable by you only)
        #[arg(long)]
        out: std::path::PathBuf,
        /// Replace FILE if it exists
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The data file to copy (stop its server first)
    #[arg(long)]
    pub from: std::path::PathBuf,
    /// The PostgreSQL database to copy it into; it must have no customers yet
    #[arg(long, env = "WEBHOOKS_DATABASE", hide_env_values = true)]
    pub database: String,
}

/// `webhooks import`: one line saying what was copied, or one saying why not.
pub fn run_import(args: ImportArgs) -> ExitCode {
    if !args.from.is_file() {
        eprintln!("error: no data file at {}", args.from.display());
        return ExitCode::from(2);
    }
    let source = match crate::store::redb::RedbStore::open(&args.from, 64 * 1024 * 1024) {
        Ok(s) => s,
        Err(crate::store::OpenError::InUse(path)) => {
            eprintln!("error: the data file {path} is in use: stop its server first");
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let result = crate::store::postgres::import(source.as_ref(), &args.database);
    crate::store::Engine::close(source.as_ref());
    match result {
        Ok(n) => {
            println!(
                "imported {} customers, {} endpoints, {} events and {} deliveries",
                n.customers, n.endpoints, n.events, n.deliveries
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

#[derive(Debug, Args)]
pub struct ServerArg {
    /// The running server (`host:port` means http://host:port)
    #[arg(long, env = "WEBHOOKS_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Trust this CA (PEM) for the server's HTTPS certificate, besides the public ones
    #[arg(long, env = "WEBHOOKS_SERVER_CA_FILE")]
    pub server_ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// The admin token printed by the first start of `webhooks serve`
    #[arg(long, env = "WEBHOOKS_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// JSON on stdout (one object per line), for scripts
    #[arg(long)]
    pub json: bool,
}

impl AdminArgs {
    fn client(&self) -> Client {
        Client::new(
            &self.server.server,
            self.server.server_ca_file.as_deref(),
            self.token.clone(),
            "--token / WEBHOOKS_ADMIN_TOKEN",
        )
    }
}

/// What a customer's command needs: the server, the customer's API key, the output form.
#[derive(Debug, Args)]
pub struct CustomerArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// The customer's API key (whk_…)
    #[arg(long, env = "WEBHOOKS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Or, as the operator: the admin token (used when no API key is given)
    #[arg(long, env = "WEBHOOKS_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// With the admin token: the customer (name or id) whose objects to list [default: all]
    #[arg(long)]
    pub customer: Option<String>,
    /// One JSON object per line, for scripts
    #[arg(long)]
    pub json: bool,
}

impl CustomerArgs {
    /// The customer's key if given; else the operator's token.
    fn client(&self) -> Client {
        let given = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
        match (given(&self.api_key), given(&self.token)) {
            (None, Some(token)) => Client::new(
                &self.server.server,
                self.server.server_ca_file.as_deref(),
                Some(token),
                "--token / WEBHOOKS_ADMIN_TOKEN",
            ),
            (key, _) => Client::new(
                &self.server.server,
                self.server.server_ca_file.as_deref(),
                key,
                "--api-key / WEBHOOKS_API_KEY",
            ),
        }
    }

    fn out(&self) -> client::manage::Output {
        let given = |s: &Option<String>| s.as_ref().is_some_and(|s| !s.trim().is_empty());
        client::manage::Output {
            json: self.json,
            operator: !given(&self.api_key) && given(&self.token),
            customer: self.customer.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum EndpointsAction {
    /// Every endpoint of the customer, newest first
    List(CustomerArgs),
    /// One endpoint, with its signing secret
    Show {
        id: String,
        #[command(flatten)]
        who: CustomerArgs,
    },
    /// Deliver to it again
    Enable {
        id: String,
        #[command(flatten)]
        who: CustomerArgs,
    },
    /// Stop delivering to it (what waits for it fails as endpoint_disabled)
    Disable {
        id: String,
        #[command(flatten)]
        who: CustomerArgs,
    },
    /// Delete it with its deliveries
    Delete {
        id: String,
        #[command(flatten)]
        who: CustomerArgs,
    },
    /// End its pause now: what waits goes, from a small start
    Resume {
        id: String,
        #[command(flatten)]
        who: CustomerArgs,
    },
    /// Fail what waits behind its pause (receiver_unavailable, never sent)
    FailWaiting {
        id: String,
        #[command(flatten)]
        who: CustomerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesAction {
    /// The newest deliveries, oldest first; --follow prints each new one once it finished
    List {
        /// Only this endpoint's
        #[arg(long)]
        endpoint: Option<String>,
        /// Only these: pending, sending, succeeded, failed, interrupted
        #[arg(long)]
        status: Option<String>,
        /// Keep printing new deliveries until interrupted
        #[arg(long)]
        follow: bool,
        /// How many of the newest to show (it says when there are more)
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
        #[command(flatten)]
        who: CustomerArgs,
    },
    /// Send a delivery's event again to its endpoint
    Resend {
        id: String,
        #[command(flatten)]
        who: CustomerArgs,
    },
    /// Resend, once per event, what failed or was interrupted on an endpoint since a time
    Recover {
        endpoint: String,
        /// RFC 3339, e.g. 2026-11-28T09:00:00Z
        #[arg(long)]
        since: String,
        /// RFC 3339 [default: now]
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        who: CustomerArgs,
    },
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The event type, e.g. transactions.fetched
    pub event: String,
    /// The customer, by name or id
    #[arg(long, default_value = "default")]
    pub customer: String,
    /// The data: '{…}', @file.json, or - for stdin [default: the catalog example]
    #[arg(long)]
    pub data: Option<String>,
    /// Wait for every delivery and print its outcome; exit 1 if one did not succeed
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Address to receive on
    #[arg(long, env = "WEBHOOKS_LISTEN_ADDR", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// A customer API key: register this receiver as that customer's endpoint
    #[arg(long, env = "WEBHOOKS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Or, as the operator: register it for this customer (name or id) with the admin token
    #[arg(long)]
    pub customer: Option<String>,
    /// The admin token, used with --customer when no API key is given
    #[arg(long, env = "WEBHOOKS_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Event types to subscribe to, comma-separated, or *
    #[arg(long, default_value = "*")]
    pub events: String,
    /// Verify with this signing secret (when not registering with --api-key)
    #[arg(long, env = "WEBHOOKS_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// The HTTP status to answer with, to rehearse failures
    #[arg(long, default_value_t = 200)]
    pub status: u16,
    /// Wait this long before answering
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// Relay each verified request to your app at this URL and answer what it answers
    #[arg(long, conflicts_with = "status")]
    pub forward_to: Option<String>,
    /// One JSON object per received request on stdout (time, event, id, verified, body);
    /// the rest goes to stderr
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArg,
}

#[derive(Debug, Subcommand)]
pub enum OperatorSessionsAction {
    /// End every operator session: whoever is signed in at /admin signs in again
    End(AdminArgs),
}

#[derive(Debug, Subcommand)]
pub enum CustomersAction {
    /// Create a customer and print its first API key
    Add {
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List customers
    List(AdminArgs),
}

/// Runs a client subcommand.
pub fn run_client(command: ClientCommand) -> ExitCode {
    client::finish(match command {
        ClientCommand::Trigger(t) => client::trigger(
            &t.admin.client(),
            &t.event,
            &t.customer,
            t.data.as_deref(),
            t.wait,
            t.admin.json,
        ),
        ClientCommand::Listen(l) => client::listen::run(ListenOptions {
            listen: l.listen,
            server: l.server.server,
            server_ca_file: l.server.server_ca_file,
            api_key: l.api_key,
            operator: l.customer.map(|c| (c, l.token)),
            events: l.events,
            secret: l.secret,
            status: l.status,
            delay_ms: l.delay_ms,
            json: l.json,
            forward_to: l.forward_to,
        }),
        ClientCommand::Customers {
            action: CustomersAction::Add { name, admin },
        } => client::customers_add(&admin.client(), &name, admin.json),
        ClientCommand::Customers {
            action: CustomersAction::List(admin),
        } => client::customers_list(&admin.client(), admin.json),
        ClientCommand::EventTypes(who) => client::event_types(&who.client(), who.json),
        ClientCommand::Backup { out, force, admin } => {
            client::backup(&admin.client(), &out, force, admin.json)
        }
        ClientCommand::Status(admin) => client::status(&admin.client(), admin.json),
        ClientCommand::Health { server } => client::health(&Client::new(
            &server.server,
            server.server_ca_file.as_deref(),
            None,
            "",
        )),
        ClientCommand::OperatorSessions {
            action: OperatorSessionsAction::End(admin),
        } => client::end_operator_sessions(&admin.client(), admin.json),
        ClientCommand::Endpoints { action } => {
            use client::manage::*;
            match action {
                EndpointsAction::List(who) => endpoints_list(&who.client(), &who.out()),
                EndpointsAction::Show { id, who } => endpoints_show(&who.client(), &who.out(), &id),
                EndpointsAction::Enable { id, who } => {
                    endpoints_set_enabled(&who.client(), &who.out(), &id, true)
                }
                EndpointsAction::Disable { id, who } => {
                    endpoints_set_enabled(&who.client(), &who.out(), &id, false)
                }
                EndpointsAction::Delete { id, who } => {
                    endpoints_delete(&who.client(), &who.out(), &id)
                }
                EndpointsAction::Resume { id, who } => {
                    endpoints_resume(&who.client(), &who.out(), &id)
                }
                EndpointsAction::FailWaiting { id, who } => {
                    endpoints_fail_waiting(&who.client(), &who.out(), &id)
                }
            }
        }
        ClientCommand::Deliveries { action } => {
            use client::manage::*;
            match action {
                DeliveriesAction::List {
                    endpoint,
                    status,
                    follow,
                    limit,
                    who,
                } => deliveries_list(
                    &who.client(),
                    &who.out(),
                    endpoint.as_deref(),
                    status.as_deref(),
                    follow,
                    limit as usize,
                ),
                DeliveriesAction::Resend { id, who } => {
                    deliveries_resend(&who.client(), &who.out(), &id)
                }
                DeliveriesAction::Recover {
                    endpoint,
                    since,
                    until,
                    who,
                } => deliveries_recover(
                    &who.client(),
                    &who.out(),
                    &endpoint,
                    &since,
                    until.as_deref(),
                ),
            }
        }
        ClientCommand::Completions { shell } => {
            use clap::CommandFactory;
            // Written whole, then printed: a reader that stops early (`| head`) ends it quietly.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "webhooks", &mut script);
            client::print_quietly(&script);
            Ok(())
        }
    })
}
