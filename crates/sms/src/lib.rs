//! The SMS codec: pure functions from text to SMS-SUBMIT PDUs and from received PDUs back to
//! text. No I/O happens here, so everything is unit-, property- and fuzz-testable.
//!
//! - [`gsm7`]: GSM 7-bit default alphabet, extension table, septet packing (TS 23.038 §6).
//! - [`nls`]: national language shift tables (Turkish, Spanish, Portuguese).
//! - [`user_data`]: choosing an encoding, segmentation, TP-UD reading; [`udh`]: TP-DCS and the
//!   user data header.
//! - [`address`], [`time`], [`status`]: the fields of TS 23.040 §9.
//! - [`pdu`]: whole PDUs: [`encode_submit`] and [`decode`].

pub mod address;
mod error;
pub mod gsm7;
pub mod nls;
pub mod pdu;
mod reader;
pub mod status;
pub mod time;
pub mod udh;
pub mod user_data;

pub use address::{Address, TypeOfNumber};
pub use error::{DecodeError, EncodeError};
pub use gsm7::Charset;
pub use nls::NationalLanguage;
pub use pdu::{
    DEFAULT_MAX_PARTS, Deliver, EncodedMessage, EncodedPart, Pdu, StatusReport, Submit,
    SubmitOptions, Validity, decode, decode_hex, decode_lenient, encode_deliver,
    encode_status_report, encode_submit,
};
pub use reader::{parse_hex, to_hex};
pub use status::{Status, StatusCategory};
pub use udh::{Concat, DataCoding, Encoding, InformationElement, UserDataHeader};
pub use user_data::{Body, TextPlan, UserData, join_text};
