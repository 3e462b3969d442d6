//! `chanlayer send NAME MESSAGE`: sends one message to a channel, or with `--group` to every
//! member of a group. The message is JSON text encoded the way the Django layer's default
//! serializer encodes a message dict (`msgpack.packb(message)`: maps, str keys and values
//! as msgpack str, integers in their smallest form, floats as float 64), so that a consumer
//! receives it as if Django had sent it. `--encoding json` sends the JSON text itself (the
//! layer's `json` serializer) and `--encoding raw` the bytes as given.

use std::{io::Read, time::Duration};

use bytes::Bytes;
use chanlayer_client::SendOptions;
use clap::{Args, ValueEnum};
use serde_json::json;

use super::{
    ConnectArgs,
    output::{Failure, Report, bytes, count},
};

/// How the message is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    /// JSON text encoded as msgpack, as the Django layer's default serializer does.
    Msgpack,
    /// JSON text sent as UTF-8 JSON, as the layer's `json` serializer does.
    Json,
    /// The bytes as given, unchanged.
    Raw,
}

/// Flags of `chanlayer send`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Example, to the consumers of a Django chat room:\n  \
    chanlayer send --group chat_lobby '{\"type\": \"chat.message\", \"message\": \"hi\"}'")]
pub struct SendArgs {
    /// The channel name (or, with --group, the group name).
    pub name: String,

    /// The message: a JSON object with a "type" key, such as
    /// '{"type": "chat.message", "text": "hi"}'; with --encoding raw, any text. `-` reads
    /// it from stdin.
    pub message: String,

    /// Send to every member of the group NAME instead of to the channel NAME.
    #[arg(long)]
    pub group: bool,

    /// How the message is encoded.
    #[arg(long, value_enum, default_value = "msgpack")]
    pub encoding: Encoding,

    /// The channel's capacity: the send fails when the channel holds this many messages
    /// (with --group, a member whose channel is that full misses it). 0 means the server's
    /// default (100).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub capacity: u32,

    /// How long the message may wait unread, in milliseconds. 0 means the server's
    /// default (60 s).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub expiry_ms: u64,

    /// Where the server is, and how to print.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The JSON value as the msgpack value `msgpack.packb` writes for its Python equivalent.
fn to_msgpack(value: &serde_json::Value) -> rmpv::Value {
    use serde_json::Value as J;
    match value {
        J::Null => rmpv::Value::Nil,
        J::Bool(b) => rmpv::Value::Boolean(*b),
        J::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => rmpv::Value::from(u),
            (None, Some(i)) => rmpv::Value::from(i),
            _ => rmpv::Value::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => rmpv::Value::from(s.as_str()),
        J::Array(items) => rmpv::Value::Array(items.iter().map(to_msgpack).collect()),
        J::Object(map) => rmpv::Value::Map(
            map.iter()
                .map(|(k, v)| (rmpv::Value::from(k.as_str()), to_msgpack(v)))
                .collect(),
        ),
    }
}

/// The message's bytes in `encoding`; a message for Django must be an object with a
/// string `type`, as ASGI messages are.
pub fn encode(text: &[u8], encoding: Encoding) -> Result<Vec<u8>, Failure> {
    if encoding == Encoding::Raw {
        return Ok(text.to_vec());
    }
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| {
        Failure::usage(format!(
            "the message is not valid JSON ({e}); use --encoding raw to send it as it is"
        ))
    })?;
    if !value.get("type").is_some_and(serde_json::Value::is_string) {
        return Err(Failure::usage(
            "the message must be a JSON object with a string \"type\", such as \
             '{\"type\": \"chat.message\", \"text\": \"hi\"}'; use --encoding raw to send \
             other bytes",
        ));
    }
    Ok(match encoding {
        Encoding::Json => value.to_string().into_bytes(),
        _ => {
            let mut out = Vec::new();
            rmpv::encode::write_value(&mut out, &to_msgpack(&value))
                .map_err(|e| Failure::usage(format!("cannot encode the message: {e}")))?;
            out
        }
    })
}

/// Encodes and sends the message.
pub async fn run(args: SendArgs) -> Result<Report, Failure> {
    let url = args.connect.url();
    let text = if args.message == "-" {
        let mut text = Vec::new();
        std::io::stdin()
            .read_to_end(&mut text)
            .map_err(|e| Failure::usage(format!("cannot read the message from stdin: {e}")))?;
        text
    } else {
        args.message.clone().into_bytes()
    };
    let payload = Bytes::from(encode(&text, args.encoding)?);
    let size = payload.len() as u64;
    let options = SendOptions {
        capacity: args.capacity,
        expiry: (args.expiry_ms > 0).then(|| Duration::from_millis(args.expiry_ms)),
    };
    let client = args.connect.client().await?;
    let encoding = args
        .encoding
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    let namespace = &args.connect.namespace;
    let human;
    let json = if args.group {
        let sent = client
            .group_send_with(&args.name, payload, options, Vec::new())
            .await
            .map_err(|e| Failure::client(e, &url))?;
        human = format!(
            "sent to group {:?} in namespace {namespace:?} ({}, {encoding}): delivered to {}, \
             dropped for {} (channel full)\n",
            args.name,
            bytes(size),
            count(sent.delivered.into(), "member"),
            sent.dropped,
        );
        json!({
            "namespace": namespace, "group": args.name, "bytes": size, "encoding": encoding,
            "delivered": sent.delivered, "dropped": sent.dropped,
        })
    } else {
        let delivered = client
            .send_with(&args.name, payload, options)
            .await
            .map_err(|e| Failure::client(e, &url))?;
        human = format!(
            "sent to channel {:?} in namespace {namespace:?} ({}, {encoding}): {}\n",
            args.name,
            bytes(size),
            if delivered {
                "handed to a waiting receive"
            } else {
                "queued"
            },
        );
        json!({
            "namespace": namespace, "channel": args.name, "bytes": size, "encoding": encoding,
            "delivered": delivered,
        })
    };
    Ok(Report::new(human, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_packed_as_msgpack_packb_packs_its_dict() {
        // msgpack.packb({"type": "chat.message"}) in Python.
        let packed = encode(br#"{"type": "chat.message"}"#, Encoding::Msgpack).expect("packs");
        assert_eq!(packed, b"\x81\xa4type\xacchat.message");
        // Integers in their smallest form, floats as float 64, null, lists, booleans.
        let packed = encode(
            br#"{"type": "t", "n": [1, -1, 300, 1.5, null, true]}"#,
            Encoding::Msgpack,
        )
        .expect("packs");
        let value = rmpv::decode::read_value(&mut &packed[..]).expect("decodes");
        let n = &value.as_map().expect("a map")[0];
        assert_eq!(n.0.as_str(), Some("n"));
        let mut expected = Vec::new();
        rmpv::encode::write_value(
            &mut expected,
            &rmpv::Value::Array(vec![
                rmpv::Value::from(1u64),
                rmpv::Value::from(-1i64),
                rmpv::Value::from(300u64),
                rmpv::Value::F64(1.5),
                rmpv::Value::Nil,
                rmpv::Value::Boolean(true),
            ]),
        )
        .expect("encodes");
        assert!(packed.windows(expected.len()).any(|w| w == expected));
        assert!(packed.starts_with(b"\x82\xa1n\x96\x01\xff\xcd\x01\x2c\xcb"));
    }

    #[test]
    fn a_message_for_django_needs_a_type() {
        assert!(encode(b"not json", Encoding::Msgpack).is_err());
        assert!(encode(b"[1, 2]", Encoding::Msgpack).is_err());
        assert!(encode(br#"{"text": "hi"}"#, Encoding::Json).is_err());
        assert_eq!(
            encode(br#"{ "type" : "a" }"#, Encoding::Json).expect("json"),
            br#"{"type":"a"}"#
        );
        assert_eq!(
            encode(b"anything", Encoding::Raw).expect("raw"),
            b"anything"
        );
    }
}
