//! `stellar admin`: tenants, users and API tokens, created directly in the database by the
//! operator (whoever can read the database and the key directory), through the same account
//! services the API uses, and recorded in the ledger as `cli:<operating-system user>`.

use std::io::BufRead;

use app::types::{NewApiToken, NewTenant, NewUser, Role};

use super::args::AdminCommand;
use super::{open_db, operator};
use crate::domain::Password;
use crate::secrets;

pub async fn run(cmd: AdminCommand) -> Result<(), String> {
    match cmd {
        AdminCommand::CreateTenant { db, slug, name } => {
            let services = open_db(&db).await?;
            let t = services
                .accounts
                .create_tenant(&operator(), NewTenant { slug, name })
                .await
                .map_err(|e| e.detail())?;
            services.close().await;
            println!("created tenant {} ({})", t.slug, t.name);
            Ok(())
        }
        AdminCommand::CreateUser {
            db,
            username,
            role,
            tenant,
            display_name,
            password_stdin,
        } => {
            let role: Role = role
                .parse()
                .map_err(|e: app::types::UnknownRole| e.to_string())?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (secrets::random_secret(18), true)
            };
            let password = Password::parse(&password).map_err(|e| e.detail())?;
            let services = open_db(&db).await?;
            let input = NewUser {
                username,
                display_name: display_name.unwrap_or_default(),
                role,
                tenant,
                password: String::new(),
            };
            let u = services
                .accounts
                .create_user_with(&operator(), input, password.clone())
                .await
                .map_err(|e| e.detail())?;
            services.close().await;
            println!("created user {} ({})", u.username, u.role);
            if generated {
                println!("password: {}", password.expose());
                println!("(shown once: store it now)");
            }
            Ok(())
        }
        AdminCommand::CreateToken {
            db,
            user,
            name,
            expires_in_days,
            scopes,
        } => {
            let services = open_db(&db).await?;
            let input = NewApiToken {
                name,
                user: Some(user),
                expires_in_days,
                scopes: (!scopes.is_empty()).then_some(scopes),
            };
            let created = services
                .accounts
                .create_token(&operator(), input)
                .await
                .map_err(|e| e.detail())?;
            services.close().await;
            // The token alone on standard output, so that scripts can capture it.
            println!("{}", created.secret);
            eprintln!(
                "token `{}` for {} created (id {}); it is shown once",
                created.token.name, created.token.user, created.token.id
            );
            Ok(())
        }
    }
}
