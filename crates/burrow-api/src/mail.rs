//! Mail burrow sends: invitation links, through the SMTP server of config `smtp_url`
//! (`smtp://host:port` plain, `smtp://...?tls=required` for STARTTLS, `smtps://` for TLS;
//! credentials in the URL's user and password).

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long one message may take to hand over (the invitation answer waits for it).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid smtp_url: {0}")]
    Url(String),
    #[error("invalid smtp_from address: {0}")]
    From(String),
}

/// What an invitation mail says.
pub struct InvitationMail<'a> {
    pub to: &'a str,
    pub project: &'a str,
    pub role: &'a str,
    pub inviter: &'a str,
    pub accept_url: &'a str,
    pub expires: chrono::DateTime<chrono::Utc>,
}

impl Mailer {
    pub fn new(smtp_url: &str, from: &str) -> Result<Mailer, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            // The URL holds the password: never echo it.
            .map_err(|e| MailError::Url(e.to_string().replace(smtp_url, "(the url)")))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| MailError::From(e.to_string()))?;
        Ok(Mailer { transport, from })
    }

    /// Sends the invitation; `false` (logged, without the link) when it could not be handed
    /// to the SMTP server in time. The link is in the answer either way.
    pub async fn send_invitation(&self, mail: &InvitationMail<'_>) -> bool {
        let Ok(to) = mail.to.parse::<Mailbox>() else {
            return false;
        };
        let body = format!(
            "{inviter} invited you to the burrow project \"{project}\" as {role}.\n\n\
             Accept the invitation (the link works once, until {expires}):\n\n{url}\n\n\
             If you did not expect this, ignore this message.\n",
            inviter = mail.inviter,
            project = mail.project,
            role = mail.role,
            expires = mail.expires.format("%Y-%m-%d %H:%M UTC"),
            url = mail.accept_url,
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("Join \"{}\" on burrow", mail.project))
            .body(body);
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "invitation mail not built");
                return false;
            }
        };
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "invitation mail not sent");
                false
            }
            Err(_) => {
                tracing::warn!("invitation mail not sent: the SMTP server took too long");
                false
            }
        }
    }
}
