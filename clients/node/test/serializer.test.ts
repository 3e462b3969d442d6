/** msgpack payloads are byte-compatible with the Python client (`msgpack.packb` defaults). */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { msgpackSerializer } from "../src/index.js";

describe("msgpack serializer", () => {
  it("writes the same bytes as Python's msgpack.packb", () => {
    // python -c "import msgpack; print(msgpack.packb({'type': 'chat_message', 'message': 'héllo',
    //   'n': 1, 'neg': -200, 'big': 2**40, 'f': 1.5, 'b': b'\x00\x01', 'l': [1, 'a', None, True],
    //   'd': {'k': False}}).hex())"
    const python =
      "89a474797065ac636861745f6d657373616765a76d657373616765a668c3a96c6c6fa16e01a36e6567d1ff38" +
      "a3626967cf0000010000000000a166cb3ff8000000000000a162c4020001a16c9401a161c0c3a16481a16bc2";
    const message = {
      type: "chat_message",
      message: "héllo",
      n: 1,
      neg: -200,
      big: 2 ** 40,
      f: 1.5,
      b: new Uint8Array([0, 1]),
      l: [1, "a", null, true],
      d: { k: false },
    };
    assert.equal(Buffer.from(msgpackSerializer.serialize(message)).toString("hex"), python);
    assert.deepEqual(msgpackSerializer.deserialize(new Uint8Array(Buffer.from(python, "hex"))), message);
  });

  it("refuses bytes that are not a map", () => {
    assert.throws(() => msgpackSerializer.deserialize(Buffer.from("93010203", "hex")), TypeError);
  });
});
