//! Modems on another box, behind a network serial server (ser2net and the like):
//!
//! - `tcp://host:port`: raw TCP, the bytes of the serial line as they are (ser2net's `tcp`
//!   accepter);
//! - `rfc2217://host:port`: Telnet with the COM-PORT-OPTION of RFC 2217 (ser2net's
//!   `telnet(rfc2217)` accepter), which also sets the remote line's speed and framing (8N1 at the
//!   configured `baud`, no flow control).
//!
//! For RFC 2217 a small task sits between the driver and the socket: it answers the Telnet
//! negotiation, drops the server's notifications, doubles `0xFF` going out and undoubles it
//! coming in, so the driver sees a plain byte stream either way. When the connection drops the
//! driver reads end-of-file and reconnects with backoff, as after a USB unplug.

use std::collections::HashSet;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;
const BINARY: u8 = 0;
const ECHO: u8 = 1;
const SGA: u8 = 3;
/// RFC 2217's COM-PORT-OPTION.
const COM_PORT: u8 = 44;
const SET_BAUDRATE: u8 = 1;
const SET_DATASIZE: u8 = 2;
const SET_PARITY: u8 = 3;
const SET_STOPSIZE: u8 = 4;
const SET_CONTROL: u8 = 5;

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `addr` (host:port) with a timeout, Nagle off (AT is many small writes).
pub async fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connection timed out"))??;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// What we say first: binary both ways, no go-ahead, COM-PORT-OPTION, then 8N1 at `baud`
/// without flow control.
pub fn opening(baud: u32) -> Vec<u8> {
    let mut out = vec![
        IAC, WILL, BINARY, IAC, DO, BINARY, IAC, WILL, SGA, IAC, DO, SGA, IAC, WILL, COM_PORT,
    ];
    let mut sub = |cmd: u8, value: &[u8]| {
        out.extend_from_slice(&[IAC, SB, COM_PORT, cmd]);
        for b in value {
            out.push(*b);
            if *b == IAC {
                out.push(IAC);
            }
        }
        out.extend_from_slice(&[IAC, SE]);
    };
    sub(SET_BAUDRATE, &baud.to_be_bytes());
    sub(SET_DATASIZE, &[8]);
    sub(SET_PARITY, &[1]);
    sub(SET_STOPSIZE, &[1]);
    sub(SET_CONTROL, &[1]);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    Iac,
    Verb(u8),
    Sub,
    SubIac,
}

/// The Telnet side of an RFC 2217 connection: turns what the server sends into line data and
/// answers to send back.
#[derive(Debug)]
pub struct Telnet {
    state: State,
    /// Answers already given, so a negotiation never loops.
    answered: HashSet<(u8, u8)>,
}

impl Default for Telnet {
    fn default() -> Self {
        Telnet {
            state: State::Data,
            // The opening already said these.
            answered: [
                (WILL, BINARY),
                (DO, BINARY),
                (WILL, SGA),
                (DO, SGA),
                (WILL, COM_PORT),
            ]
            .into_iter()
            .collect(),
        }
    }
}

impl Telnet {
    /// Feeds bytes from the server: line data goes to `data`, answers to `reply`.
    pub fn feed(&mut self, input: &[u8], data: &mut Vec<u8>, reply: &mut Vec<u8>) {
        for &b in input {
            self.state = match (self.state, b) {
                (State::Data, IAC) => State::Iac,
                (State::Data, _) => {
                    data.push(b);
                    State::Data
                }
                (State::Iac, IAC) => {
                    data.push(IAC);
                    State::Data
                }
                (State::Iac, DO | DONT | WILL | WONT) => State::Verb(b),
                (State::Iac, SB) => State::Sub,
                (State::Iac, _) => State::Data,
                (State::Verb(verb), opt) => {
                    self.answer(verb, opt, reply);
                    State::Data
                }
                (State::Sub, IAC) => State::SubIac,
                (State::Sub, _) => State::Sub,
                (State::SubIac, SE) => State::Data,
                (State::SubIac, _) => State::Sub,
            };
        }
    }

    fn answer(&mut self, verb: u8, opt: u8, reply: &mut Vec<u8>) {
        let wanted = matches!(opt, BINARY | SGA | COM_PORT);
        let ours = match verb {
            DO if wanted => WILL,
            DO => WONT,
            // The modem echoes on its own; a second echo from the server would be noise.
            WILL if wanted && opt != ECHO => DO,
            WILL => DONT,
            _ => return,
        };
        if self.answered.insert((ours, opt)) {
            reply.extend_from_slice(&[IAC, ours, opt]);
        }
    }
}

/// Line data to send: `0xFF` doubled.
pub fn escape(input: &[u8], out: &mut Vec<u8>) {
    for &b in input {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
}

/// Connects to an RFC 2217 server and returns a plain byte stream to the remote serial line.
pub async fn open_rfc2217(addr: &str, baud: u32) -> std::io::Result<DuplexStream> {
    let mut tcp = connect(addr).await?;
    tcp.write_all(&opening(baud)).await?;
    let (driver_side, mut ours) = tokio::io::duplex(4096);
    tokio::spawn(async move {
        let (mut rd, mut wr) = tcp.split();
        let mut telnet = Telnet::default();
        let mut from_net = [0u8; 2048];
        let mut from_driver = [0u8; 2048];
        let mut data = Vec::new();
        let mut reply = Vec::new();
        loop {
            tokio::select! {
                r = rd.read(&mut from_net) => {
                    let n = match r { Ok(0) | Err(_) => break, Ok(n) => n };
                    data.clear();
                    reply.clear();
                    telnet.feed(&from_net[..n], &mut data, &mut reply);
                    if !reply.is_empty() && wr.write_all(&reply).await.is_err() {
                        break;
                    }
                    if !data.is_empty() && ours.write_all(&data).await.is_err() {
                        break;
                    }
                }
                r = ours.read(&mut from_driver) => {
                    let n = match r { Ok(0) | Err(_) => break, Ok(n) => n };
                    reply.clear();
                    escape(&from_driver[..n], &mut reply);
                    if wr.write_all(&reply).await.is_err() {
                        break;
                    }
                }
            }
        }
        // Dropping both ends: the driver reads end-of-file, the server sees the close.
    });
    Ok(driver_side)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_is_answered_once_and_data_passes() {
        let mut t = Telnet::default();
        let mut data = Vec::new();
        let mut reply = Vec::new();
        // What ser2net sends on connect, then "OK" with a doubled 0xFF inside, split anywhere.
        let input = [
            IAC, WILL, SGA, IAC, DO, SGA, IAC, WILL, ECHO, IAC, DONT, ECHO, IAC, DO, BINARY, IAC,
            WILL, BINARY, IAC, DO, COM_PORT, IAC, SB, COM_PORT, 101, 0, 1, 194, 0, IAC, SE, b'O',
            IAC, IAC, b'K', IAC, DO, 24,
        ];
        for chunk in input.chunks(3) {
            t.feed(chunk, &mut data, &mut reply);
        }
        assert_eq!(data, vec![b'O', IAC, b'K']);
        // Only the echo (refused) and the terminal type (refused) needed an answer: the rest
        // the opening already said.
        assert_eq!(reply, vec![IAC, DONT, ECHO, IAC, WONT, 24]);
        reply.clear();
        t.feed(&[IAC, WILL, ECHO], &mut data, &mut reply);
        assert!(reply.is_empty(), "never answered twice");
    }

    #[test]
    fn the_opening_sets_8n1_at_the_baud_rate() {
        let o = opening(115_200);
        let baud = [IAC, SB, COM_PORT, SET_BAUDRATE, 0, 1, 0xC2, 0, IAC, SE];
        assert!(o.windows(baud.len()).any(|w| w == baud));
        let mut out = Vec::new();
        escape(&[1, IAC, 2], &mut out);
        assert_eq!(out, vec![1, IAC, IAC, 2]);
    }
}
