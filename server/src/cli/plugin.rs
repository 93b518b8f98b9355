//! `stellar plugin pack|keygen` (offline, for partners before they upload) and
//! `stellar plugin register-key` (through a server's API).

use std::process::ExitCode;

use app::types::{PublisherKey, PublisherKeyState};
use trust::keys::KeyPair;

use super::args::{PluginCommand, ServerArgs};
use super::client::{answer, client, runtime, trouble, url};
use crate::services::keys::write_private_file;

pub fn run_plugin(cmd: PluginCommand) -> ExitCode {
    match cmd {
        PluginCommand::Pack { dir, out, sign } => {
            let passphrase = std::env::var("STELLAR_KEY_PASSPHRASE")
                .ok()
                .filter(|p| !p.is_empty());
            let mut keys = Vec::new();
            for path in &sign {
                let pem = match std::fs::read_to_string(path) {
                    Ok(p) => p,
                    Err(e) => return trouble(format!("cannot read `{}`: {e}", path.display())),
                };
                match KeyPair::from_pkcs8_pem(&pem, passphrase.as_deref()) {
                    Ok(k) => keys.push(k),
                    Err(e) => return trouble(format!("`{}`: {e}", path.display())),
                }
            }
            match plugin::pack::pack_dir(&dir, &keys) {
                Ok((bytes, inspected)) => {
                    if let Err(e) = std::fs::write(&out, &bytes) {
                        return trouble(format!("cannot write `{}`: {e}", out.display()));
                    }
                    let m = &inspected.manifest;
                    println!(
                        "packed {} {} into {} ({} bytes, {} files, {} signature{}, sha256 {})",
                        m.id,
                        m.version,
                        out.display(),
                        bytes.len(),
                        inspected.bundle.files.len(),
                        keys.len(),
                        if keys.len() == 1 { "" } else { "s" },
                        inspected.bundle.sha256
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    if let plugin::pack::PackError::Refused(r) = &e {
                        for err in &r.errors {
                            eprintln!("  {err}");
                        }
                    }
                    ExitCode::FAILURE
                }
            }
        }
        PluginCommand::Keygen { out } => {
            let key = match KeyPair::generate() {
                Ok(k) => k,
                Err(e) => return trouble(e),
            };
            let passphrase = std::env::var("STELLAR_KEY_PASSPHRASE")
                .ok()
                .filter(|p| !p.is_empty());
            let pem = match key.to_pkcs8_pem(passphrase.as_deref()) {
                Ok(p) => p,
                Err(e) => return trouble(e),
            };
            let public = out.with_extension("pub.pem");
            if out.exists() {
                return trouble(format!(
                    "`{}` exists: choose another path (a key is never overwritten)",
                    out.display()
                ));
            }
            if let Err(e) = write_private_file(&out, &pem) {
                return trouble(format!("cannot write `{}`: {e}", out.display()));
            }
            if let Err(e) = std::fs::write(&public, key.public().to_pem()) {
                return trouble(format!("cannot write `{}`: {e}", public.display()));
            }
            println!(
                "key {} written: private {} (keep it secret), public {}",
                key.id().0,
                out.display(),
                public.display()
            );
            ExitCode::SUCCESS
        }
        PluginCommand::RegisterKey {
            public_key,
            name,
            server,
        } => {
            let pem = match std::fs::read_to_string(&public_key) {
                Ok(p) => p,
                Err(e) => return trouble(format!("cannot read `{}`: {e}", public_key.display())),
            };
            runtime(async move {
                let client = client()?;
                let res = client
                    .post(url(&server.server, "/api/v1/publisher-keys"))
                    .bearer_auth(&server.token)
                    .json(&serde_json::json!({"name": name, "public_key_pem": pem}))
                    .send()
                    .await
                    .map_err(|e| format!("cannot reach {}: {e}", server.server))?;
                let key: PublisherKey = answer(res).await?;
                println!(
                    "registered key {} ({}) for {}; it waits for approval by secops or an administrator before signatures by it count",
                    key.key_id, key.name, key.tenant
                );
                Ok(ExitCode::SUCCESS)
            })
        }
        PluginCommand::ApproveKey { key, server } => key_action(&key, "approve", server),
        PluginCommand::RevokeKey { key, server } => key_action(&key, "revoke", server),
    }
}

/// `approve-key` and `revoke-key`: one call to the server.
fn key_action(key: &str, action: &'static str, server: ServerArgs) -> ExitCode {
    let path = format!("/api/v1/publisher-keys/{key}/{action}");
    runtime(async move {
        let client = client()?;
        let res = client
            .post(url(&server.server, &path))
            .bearer_auth(&server.token)
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", server.server))?;
        let key: PublisherKey = answer(res).await?;
        println!(
            "publisher key {} ({}) of {} is {}",
            key.key_id,
            key.name,
            key.tenant,
            match key.state {
                PublisherKeyState::Pending => "pending approval",
                PublisherKeyState::Approved => "approved: signatures by it count",
                PublisherKeyState::Revoked => "revoked: signatures by it no longer count",
            }
        );
        Ok(ExitCode::SUCCESS)
    })
}
