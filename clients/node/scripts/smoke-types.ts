// Type-checked (never run) in a project that installed the packed tarball, with its own
// `tsc --strict`: the package's declarations resolve and describe its API.
import { ChanlayerError, ChannelLayer, type GroupSendResult, type Message } from "@chanlayer/client";

const layer: ChannelLayer = new ChannelLayer({ target: "127.0.0.1:50051", prefix: "asgi" });
const sent: Promise<GroupSendResult> = layer.groupSend("room", { type: "chat_message", message: "hi" });
const received: Promise<Message> = layer.receive("worker");
const error: ChanlayerError | undefined = undefined;
export { error, received, sent };
