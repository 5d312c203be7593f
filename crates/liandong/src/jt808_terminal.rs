//! A JT/T 808 terminal over TCP, as the load tool and the demo's patrol cars speak it:
//! registration, authentication, and messages answered one at a time.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use liandong_ingest::jt808::{
    self, id, AnswerResult, Auth, Header, Location, Message, Register, RegisterResult, Scan, Version,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One terminal's connection.
pub(crate) struct Terminal {
    stream: TcpStream,
    phone: String,
    version: Version,
    serial: u16,
    buf: Vec<u8>,
}

impl Terminal {
    /// Connects to the listener at `addr` as the terminal with phone number `phone`.
    pub(crate) async fn connect(addr: SocketAddr, phone: &str, version: Version) -> anyhow::Result<Terminal> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Terminal { stream, phone: phone.to_owned(), version, serial: 0, buf: Vec::new() })
    }

    pub(crate) async fn send(&mut self, msg_id: u16, body: &[u8]) -> anyhow::Result<u16> {
        self.serial = self.serial.wrapping_add(1);
        let header = Header::new(msg_id, self.version, &self.phone, self.serial);
        self.stream.write_all(&jt808::encode(&header, body)?).await?;
        Ok(self.serial)
    }

    /// The next message from the platform, within 30 s.
    pub(crate) async fn receive(&mut self) -> anyhow::Result<Message> {
        loop {
            match jt808::scan(&self.buf) {
                Scan::Frame { start, end, consumed } => {
                    let p = jt808::decode(&self.buf[start..end])?;
                    self.buf.drain(..consumed);
                    return Ok(Message::decode(&p.header, &p.body)?);
                }
                Scan::Skip { skip } => {
                    self.buf.drain(..skip);
                }
                Scan::NeedMore => {}
            }
            let mut chunk = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(30), self.stream.read(&mut chunk)).await??;
            if n == 0 {
                bail!("the platform closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The result of the next general answer.
    pub(crate) async fn general(&mut self) -> anyhow::Result<AnswerResult> {
        match self.receive().await? {
            Message::GeneralAnswer(a) => Ok(a.result),
            other => bail!("expected a general answer, got {other:?}"),
        }
    }

    /// Sends a location report and answers the result of its answer.
    pub(crate) async fn report(&mut self, l: &Location) -> anyhow::Result<AnswerResult> {
        self.send(id::LOCATION, &l.encode()?).await?;
        self.general().await
    }

    /// Registration and authentication.
    pub(crate) async fn sign_in(&mut self) -> anyhow::Result<()> {
        let reg = Register { model: "BENCH".into(), terminal_id: "BENCH01".into(), ..Register::default() };
        self.send(id::REGISTER, &reg.encode(self.version)).await?;
        let code = match self.receive().await? {
            Message::RegisterAnswer(a) if a.result == RegisterResult::Ok => a.code.unwrap_or_default(),
            other => bail!("registration of {} refused: {other:?}", self.phone),
        };
        let auth = Auth { code, imei: Some("000000000000000".into()), software_version: Some("bench".into()) };
        self.send(id::AUTH, &auth.encode(self.version)).await?;
        match self.general().await? {
            AnswerResult::Ok => Ok(()),
            r => bail!("authentication of {} refused: {r:?}", self.phone),
        }
    }
}
