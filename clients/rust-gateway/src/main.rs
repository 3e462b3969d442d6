//! A WebSocket chat gateway in Rust that shares rooms with the Django chat example.
//!
//! It speaks the chat page's protocol on `ws://<host>:<port>/ws/chat/<room>/`: the client
//! sends `{"message": <text>}` and receives `{"message": <text>}` for every message of the
//! room (and `{"room_count": <n>}` when the room's size changes). Each socket gets its own
//! specific channel on the process's chanlayer session, a member of group `chat_<room>`, as a
//! Django `ChatConsumer` does; a chat message is sent to the group as the msgpack map
//! `{"type": "chat_message", "message": <text>}`, byte for byte what Django's `group_send`
//! writes. Django consumers, this gateway and the Node gateway on one chanlayer server and
//! prefix share the room.
//!
//! ```text
//! chanlayer-ws-gateway --port 8002 --target 127.0.0.1:50051 --prefix asgi
//! ```
//!
//! Options (or environment): `--host` (`GATEWAY_HOST`, default 127.0.0.1), `--port`
//! (`GATEWAY_PORT`, default 8002; 0 picks a free port), `--target` (`CHANLAYER_TARGET`, default
//! 127.0.0.1:50051), `--prefix` (`CHANLAYER_PREFIX`, default `asgi`), `--token`
//! (`CHANLAYER_AUTH_TOKEN`, for a server started with a token). It prints one JSON line
//! `{"event":"listening","port":<port>}` once it accepts connections and stops on SIGINT or
//! SIGTERM, releasing its session. If the session stream ends (the server went away), the
//! gateway exits with status 1 for its supervisor to restart it.

use std::{process::ExitCode, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{
        Path, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use chanlayer_client::{Client, ConnectOptions, SendOptions, Session};
use futures_util::{SinkExt, StreamExt};
use rmpv::Value;
use tokio::{net::TcpListener, sync::mpsc};

/// Settings from the command line or the environment.
struct Options {
    host: String,
    port: u16,
    target: String,
    prefix: String,
    token: Option<String>,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let env =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let mut options = Options {
            host: env("GATEWAY_HOST", "127.0.0.1"),
            port: 0,
            target: env("CHANLAYER_TARGET", "127.0.0.1:50051"),
            prefix: env("CHANLAYER_PREFIX", "asgi"),
            token: std::env::var("CHANLAYER_AUTH_TOKEN").ok(),
        };
        let mut port = env("GATEWAY_PORT", "8002");
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--host" => options.host = value,
                "--port" => port = value,
                "--target" => options.target = value,
                "--prefix" => options.prefix = value,
                "--token" => options.token = Some(value),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        options.port = port.parse().map_err(|_| format!("invalid port {port}"))?;
        Ok(options)
    }
}

/// What every socket shares: the process's chanlayer connection and session.
struct App {
    client: Client,
    session: Session,
}

/// The channel-layer group of a room: `chat_<room>`, as in the Channels tutorial.
fn room_group_name(room: &str) -> String {
    format!("chat_{room}")
}

/// A room name: 1 to 80 ASCII letters, digits, `_`, `.` or `-` (as the Django example routes).
fn valid_room(room: &str) -> bool {
    (1..=80).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn log(event: &str, fields: serde_json::Value) {
    let mut record = serde_json::json!({ "event": event });
    if let (Some(record), serde_json::Value::Object(fields)) = (record.as_object_mut(), fields) {
        record.extend(fields);
    }
    println!("{record}");
}

/// Encodes a msgpack map with string keys, keys in the given order (as Python dicts keep them).
fn encode(fields: Vec<(&str, Value)>) -> Bytes {
    let map = Value::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    );
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &map).expect("writing to a Vec cannot fail");
    Bytes::from(out)
}

/// The text frame for the page, from a room event, or `None` for events the page ignores.
fn frame_for(payload: &[u8]) -> Option<String> {
    let value = rmpv::decode::read_value(&mut &payload[..]).ok()?;
    let field = |name: &str| {
        value
            .as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v.clone())
    };
    match field("type")?.as_str()? {
        "chat_message" => {
            let message = field("message")?;
            Some(serde_json::json!({ "message": message.as_str()? }).to_string())
        }
        "room_count" => {
            let count = field("count")?.as_i64()?;
            Some(serde_json::json!({ "room_count": count }).to_string())
        }
        _ => None,
    }
}

/// Tells the room its size, as the Django consumer does after a join or a leave.
async fn broadcast_count(app: &App, group: &str) {
    let Ok(count) = app.client.group_size(group).await else {
        return;
    };
    let payload = encode(vec![
        ("type", Value::from("room_count")),
        ("count", Value::from(count)),
    ]);
    let _ = app
        .session
        .group_send(group, payload, SendOptions::default())
        .await;
}

/// Joins the room's group, then completes the handshake: once a client sees the socket open,
/// it gets every later message of the room (the Django consumer joins before accepting too).
async fn websocket(
    ws: WebSocketUpgrade,
    Path(room): Path<String>,
    State(app): State<Arc<App>>,
) -> Response {
    if !valid_room(&room) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let group = room_group_name(&room);
    let channel = app.session.new_channel("websocket");
    if let Err(error) = app.session.group_add(&group, &channel).await {
        log(
            "join_failed",
            serde_json::json!({ "room": room, "error": error.to_string() }),
        );
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let (on_fail_app, on_fail_group, on_fail_channel) =
        (app.clone(), group.clone(), channel.clone());
    ws.on_failed_upgrade(move |_| {
        tokio::spawn(async move {
            let _ = on_fail_app
                .session
                .group_discard(&on_fail_group, &on_fail_channel)
                .await;
        });
    })
    .on_upgrade(move |socket| serve_socket(app, socket, group, channel))
}

/// Serves one socket until it closes: room events to the page, the page's messages to the room.
async fn serve_socket(app: Arc<App>, socket: WebSocket, group: String, channel: String) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<String>(64);

    // One writer owns the socket's sink.
    let writer = tokio::spawn(async move {
        while let Some(text) = out_rx.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    // One task receives the channel's messages, and is only stopped when the socket closes:
    // a receive is never abandoned while a message may be on its way to it.
    let receiver = {
        let (app, channel, out_tx) = (app.clone(), channel.clone(), out_tx.clone());
        tokio::spawn(async move {
            loop {
                match app.session.receive(&channel).await {
                    Ok(received) => {
                        if let Some(text) = frame_for(&received.payload)
                            && out_tx.send(text).await.is_err()
                        {
                            break;
                        }
                    }
                    Err(error) => {
                        log(
                            "receive_failed",
                            serde_json::json!({ "error": error.to_string() }),
                        );
                        break;
                    }
                }
            }
        })
    };

    broadcast_count(&app, &group).await;

    while let Some(Ok(frame)) = stream.next().await {
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let message = serde_json::from_str::<serde_json::Value>(text.as_str())
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned));
        let Some(message) = message else {
            let error = serde_json::json!({ "error": "expected {\"message\": <text>}" });
            let _ = out_tx.send(error.to_string()).await;
            continue;
        };
        let payload = encode(vec![
            ("type", Value::from("chat_message")),
            ("message", Value::from(message)),
        ]);
        if let Err(error) = app
            .session
            .group_send(&group, payload, SendOptions::default())
            .await
        {
            log(
                "group_send_failed",
                serde_json::json!({ "error": error.to_string() }),
            );
            let error = serde_json::json!({ "error": "not sent: the server is away" });
            let _ = out_tx.send(error.to_string()).await;
        }
    }

    receiver.abort();
    let _ = receiver.await;
    drop(out_tx);
    let _ = writer.await;
    let _ = app.session.group_discard(&group, &channel).await;
    broadcast_count(&app, &group).await;
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Resolves when the session stream has ended.
async fn session_ended(app: Arc<App>) {
    while !app.session.is_closed() {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("chanlayer-ws-gateway: {error}");
            return ExitCode::from(2);
        }
    };
    let connect = ConnectOptions {
        token: options.token.clone(),
        ..Default::default()
    };
    // `host:port`, or `unix:PATH` for a server on a Unix domain socket.
    let target = if options.target.starts_with("unix:") || options.target.contains("://") {
        options.target.clone()
    } else {
        format!("http://{}", options.target)
    };
    let client = match Client::connect_with(target, options.prefix.clone(), connect).await {
        Ok(client) => client,
        Err(error) => {
            eprintln!(
                "chanlayer-ws-gateway: cannot connect to {}: {error}",
                options.target
            );
            return ExitCode::FAILURE;
        }
    };
    let session = match client.session().await {
        Ok(session) => session,
        Err(error) => {
            eprintln!("chanlayer-ws-gateway: cannot open a session: {error}");
            return ExitCode::FAILURE;
        }
    };
    let app = Arc::new(App { client, session });
    let router = Router::new()
        .route("/ws/chat/{room}/", get(websocket))
        .with_state(app.clone());
    let listener = match TcpListener::bind((options.host.as_str(), options.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "chanlayer-ws-gateway: cannot listen on {}:{}: {error}",
                options.host, options.port
            );
            return ExitCode::FAILURE;
        }
    };
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(options.port);
    log(
        "listening",
        serde_json::json!({ "port": port, "target": options.target }),
    );

    let ended = tokio::spawn(session_ended(app.clone()));
    let lost = tokio::select! {
        result = axum::serve(listener, router).into_future() => {
            if let Err(error) = result {
                eprintln!("chanlayer-ws-gateway: {error}");
            }
            true
        }
        _ = shutdown_signal() => false,
        _ = ended => true,
    };
    // Release the session now: its channels and memberships go at once.
    let _ = app.session.close();
    tokio::time::sleep(Duration::from_millis(100)).await;
    if lost {
        log("session_lost", serde_json::json!({}));
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
