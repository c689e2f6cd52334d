//! The delivery channel of this version: a maildir-style directory, one
//! file per message. A message is written under `tmp/` and renamed into
//! `new/`, so readers never see half a message; the file is named after
//! the message id, so delivering a message twice leaves one file.

use std::path::{Path, PathBuf};

use base64::Engine;
use chrono::Utc;

use crate::storage::entities::message;

#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
    from: String,
}

impl Maildir {
    pub async fn open(root: impl Into<PathBuf>, from: impl Into<String>) -> std::io::Result<Self> {
        let root = root.into();
        for sub in ["tmp", "new", "cur"] {
            tokio::fs::create_dir_all(root.join(sub)).await?;
        }
        Ok(Self { root, from: from.into() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub async fn deliver(&self, m: &message::Model) -> std::io::Result<()> {
        let name = format!("{}.eml", m.id);
        let tmp = self.root.join("tmp").join(&name);
        let new = self.root.join("new").join(&name);
        tokio::fs::write(&tmp, self.format(m)).await?;
        tokio::fs::rename(&tmp, &new).await
    }

    fn format(&self, m: &message::Model) -> String {
        // RFC 2047 encoded-word: subjects carry accents.
        let subject = format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(m.subject.as_bytes()));
        format!(
            "Message-ID: <{id}@creneau>\r\nDate: {date}\r\nFrom: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n\
             Content-Language: {lang}\r\nX-Creneau-Channel: {channel}\r\nX-Creneau-Event: {event}\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}",
            id = m.id,
            date = Utc::now().to_rfc2822(),
            from = self.from,
            to = m.recipient,
            lang = m.language,
            channel = m.channel,
            event = m.event_id,
            body = m.body.replace('\n', "\r\n"),
        )
    }
}
