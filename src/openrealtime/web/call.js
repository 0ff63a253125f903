// A WebRTC call to this server, as OpenAI's browser clients make it: the microphone on one audio
// track, the answer on the remote track, JSON events both ways on the "oai-events" data channel;
// the offer posted as application/sdp with the ephemeral key (POST /v1/realtime/calls, or
// /v1/realtime/translations/calls for a translation).

const GATHER_TIMEOUT_MS = 2000; // host candidates only (no STUN): loopback and LAN gather in ms
const OPEN_TIMEOUT_MS = 15000;

export class Call {
  constructor(pc, channel, callId) {
    this.pc = pc;
    this.channel = channel;
    this.callId = callId;
  }

  send(event) {
    if (this.channel.readyState === "open") this.channel.send(JSON.stringify(event));
  }

  // Stop sending the microphone (after session.close, audio is no longer accepted).
  async stopSending() {
    await Promise.all(this.pc.getSenders().map((sender) => sender.replaceTrack(null)));
  }

  // Hanging up is closing the connection: the server notices at once and frees the call's place
  // (its hang-up route takes the server's key, which this page never holds).
  close() {
    this.channel.onmessage = null;
    this.pc.onconnectionstatechange = null;
    try {
      this.channel.close();
    } finally {
      this.pc.close();
    }
  }
}

// Opens a call; resolves once the event channel is open. onEvent gets every server event,
// onStream the remote audio stream, onDrop a call that ended on its own (the server hung up,
// the network went away).
export async function openCall({ path, token, microphone, onEvent, onStream, onDrop }) {
  const pc = new RTCPeerConnection();
  try {
    for (const track of microphone.getAudioTracks()) pc.addTrack(track, microphone);
    const channel = pc.createDataChannel("oai-events");
    pc.ontrack = (event) => onStream(event.streams[0] ?? new MediaStream([event.track]));
    channel.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      onEvent(event);
    };
    const opened = new Promise((resolve, reject) => {
      channel.onopen = resolve;
      setTimeout(() => reject(new Error("The call did not connect.")), OPEN_TIMEOUT_MS);
    });
    opened.catch(() => {}); // awaited below; an early failure must not leave it unhandled
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const reply = await fetch(path, {
      method: "POST",
      body: pc.localDescription.sdp,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/sdp" },
    });
    if (!reply.ok) throw new Error(await errorMessage(reply));
    const location = reply.headers.get("Location") ?? "";
    await pc.setRemoteDescription({ type: "answer", sdp: await reply.text() });
    await opened;
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") onDrop();
    };
    channel.onclose = () => onDrop();
    return new Call(pc, channel, location.split("/").pop());
  } catch (error) {
    pc.close();
    throw error;
  }
}

// The offer goes out with its candidates (the server takes no trickled ones).
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_TIMEOUT_MS);
  });
}

// The message of one of OpenAI's JSON error bodies, or the status line.
export async function errorMessage(reply) {
  try {
    const body = await reply.json();
    if (body?.error?.message) return body.error.message;
  } catch {
    // not JSON: fall through
  }
  return `The server answered ${reply.status} ${reply.statusText}.`;
}
