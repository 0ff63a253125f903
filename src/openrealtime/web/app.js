// The browser app: talk with the assistant, live captions and live translation, each a WebRTC call
// (a realtime, a transcription and a translation session) opened with an ephemeral key minted by
// this page's own server. The server's key, when it has one, is asked for once, kept in memory and
// sent only to the mint route.

import { Captions } from "./captions.js";
import { errorMessage, openCall } from "./call.js";

const MINT_PATH = "/v1/realtime/client_secrets";
const MINT_TRANSLATION_PATH = "/v1/realtime/translations/client_secrets";
const CALLS_PATH = "/v1/realtime/calls";
const TRANSLATION_CALLS_PATH = "/v1/realtime/translations/calls";
const TRANSLATION_MODEL = "gpt-realtime-translate";
const KEY_LIFETIME_S = 600;
const TRANSCRIPTION_MODEL = "gpt-4o-transcribe";
const TRANSLATION_CAPTIONS_MODEL = "gpt-realtime-whisper";
const METER_INTERVAL_MS = 30;
const HEARD_LEVEL = 0.01; // RMS of the answer's audio above which it counts as heard
const CLOSE_DRAIN_MS = 15000; // translation: how long the last words may take after Stop
const TAIL_QUIET_MS = 600; // translation: the speech is over after this much quiet
const SENTENCE_END = /[.!?…。！？]["'”’)\]]*\s*$/;

const CLOCK_TOOL = {
  type: "function",
  name: "get_current_time",
  description: "The user's current local date and time.",
  parameters: { type: "object", properties: {}, additionalProperties: false },
};

const MODES = {
  assistant: {
    headline: "Talk with the assistant",
    hint: "Press Start and ask a question. Speak over the answer to interrupt it.",
    captions: "Conversation",
  },
  transcription: {
    headline: "Live captions",
    hint: "Press Start and speak: captions appear as you talk and settle when you pause.",
    captions: "Captions",
  },
  translation: {
    headline: "Live translation",
    hint: "Pick a language, press Start and speak English: you hear and read the translation.",
    captions: "Translation",
  },
};

const $ = (id) => document.getElementById(id);
const ui = {
  start: $("start"),
  mute: $("mute"),
  status: $("status-text"),
  headline: $("headline"),
  hint: $("hint"),
  captionsTitle: $("captions-title"),
  latency: $("latency"),
  instructions: $("instructions"),
  voice: $("voice"),
  tools: $("tools"),
  language: $("language"),
  silence: $("silence"),
  orb: $("orb"),
  speaker: $("speaker"),
  toast: $("toast"),
  keyDialog: $("key-dialog"),
  keyForm: $("key-form"),
  keyInput: $("key-input"),
};
const captions = new Captions($("captions"), $("empty"));

// What the page saw, for the curious (and for the browser tests): event counts and timings.
const stats = { events: {}, errors: [], latencyMs: [], heardMs: [], outputPeak: 0 };
window.openrealtime = { stats };

const state = {
  mode: "assistant",
  config: { key_required: false, languages: [], default_language: null },
  key: null, // the server's key, in memory only, when it has one
  session: null, // the running session: { stop(), mute(on) }
};

// --- start-up -----------------------------------------------------------------------------------

async function boot() {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => selectMode(tab.dataset.mode));
  }
  ui.start.addEventListener("click", () => (state.session ? stop() : start()));
  ui.mute.addEventListener("click", () => toggleMute());
  $("clear").addEventListener("click", () => captions.clear());
  try {
    const reply = await fetch("/app/config.json");
    if (reply.ok) state.config = await reply.json();
  } catch {
    // the defaults above: no key, no language list
  }
  for (const language of state.config.languages) {
    ui.language.append(new Option(language.name, language.code, false, language.code === state.config.default_language));
  }
  selectMode("assistant");
  setStatus("idle", window.isSecureContext ? "Ready" : "Needs https");
  ui.start.disabled = false; // only now: the first mint must know whether a key is needed
}

function selectMode(mode) {
  if (state.session) return;
  if (mode !== state.mode) captions.clear(); // each mode's captions are its own
  state.mode = mode;
  document.body.dataset.mode = mode;
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.mode === mode));
  }
  ui.headline.textContent = MODES[mode].headline;
  ui.hint.textContent = MODES[mode].hint;
  ui.captionsTitle.textContent = MODES[mode].captions;
}

// --- status, errors ------------------------------------------------------------------------------

function setStatus(kind, text) {
  document.body.dataset.state = kind;
  ui.status.textContent = text;
}

let toastTimer = 0;
function toast(message) {
  stats.errors.push(message);
  ui.toast.textContent = message;
  ui.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (ui.toast.hidden = true), 8000);
}

function count(type) {
  stats.events[type] = (stats.events[type] ?? 0) + 1;
}

// --- keys -------------------------------------------------------------------------------------------

function askKey() {
  if (state.key) return Promise.resolve(state.key);
  return new Promise((resolve, reject) => {
    ui.keyInput.value = "";
    const done = (key) => {
      ui.keyForm.onsubmit = null;
      $("key-cancel").onclick = null;
      ui.keyDialog.close();
      if (key) resolve(key);
      else reject(new Error("A key is needed to use this server."));
    };
    ui.keyForm.onsubmit = (event) => {
      event.preventDefault();
      done(ui.keyInput.value.trim());
    };
    $("key-cancel").onclick = () => done("");
    ui.keyDialog.showModal();
  });
}

// An ephemeral key (ek_...) for one kind of session, from this page's own server.
async function mint(path, session) {
  const headers = { "Content-Type": "application/json" };
  if (state.config.key_required) headers.Authorization = `Bearer ${await askKey()}`;
  const body = { expires_after: { anchor: "created_at", seconds: KEY_LIFETIME_S }, session };
  const reply = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  if (reply.status === 401) state.key = null; // ask again next time
  if (!reply.ok) throw new Error(await errorMessage(reply));
  if (state.config.key_required) state.key = headers.Authorization.slice("Bearer ".length);
  return (await reply.json()).value;
}

async function microphone() {
  if (!window.isSecureContext || !navigator.mediaDevices) {
    throw new Error("The browser gives the microphone only to secure pages: open this one as 127.0.0.1 or localhost, or over HTTPS.");
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (error) {
    throw new Error(`No microphone: ${error.message}`);
  }
}

// --- level meters (the orb) and what was heard ---------------------------------------------------------

class Meters {
  constructor(context) {
    this.context = context;
    this.input = null;
    this.output = null;
    this.heardFrom = null; // when the user stopped speaking, until the answer is heard
    this.lastHeard = 0; // performance.now() when the answer's audio was last above HEARD_LEVEL
    this.showsSpeaking = false; // light the orb from the audio itself (no output_audio_buffer events)
    this.timer = setInterval(() => this.tick(), METER_INTERVAL_MS);
  }

  analyse(node) {
    const analyser = this.context.createAnalyser();
    analyser.fftSize = 1024;
    node.connect(analyser);
    return { analyser, data: new Float32Array(analyser.fftSize) };
  }

  level(meter) {
    if (meter === null) return 0;
    meter.analyser.getFloatTimeDomainData(meter.data);
    let sum = 0;
    for (const x of meter.data) sum += x * x;
    return Math.sqrt(sum / meter.data.length);
  }

  tick() {
    const mic = this.level(this.input);
    const out = this.level(this.output);
    ui.orb.style.setProperty("--mic", Math.min(1, mic * 8).toFixed(3));
    ui.orb.style.setProperty("--out", Math.min(1, out * 8).toFixed(3));
    if (this.showsSpeaking) document.body.classList.toggle("speaking", out > HEARD_LEVEL);
    if (out > HEARD_LEVEL) {
      this.lastHeard = performance.now();
      stats.outputPeak = Math.max(stats.outputPeak, out);
      if (this.heardFrom !== null) {
        stats.heardMs.push(Math.round(performance.now() - this.heardFrom));
        this.heardFrom = null;
      }
    }
  }

  // Resolves once the answer's audio has been quiet for quietMs (or after limitMs).
  quiet(quietMs, limitMs) {
    const started = performance.now();
    return new Promise((resolve) => {
      const check = () => {
        const now = performance.now();
        if (now - this.lastHeard >= quietMs || now - started >= limitMs) resolve();
        else setTimeout(check, METER_INTERVAL_MS);
      };
      check();
    });
  }

  close() {
    clearInterval(this.timer);
    ui.orb.style.setProperty("--mic", "0");
    ui.orb.style.setProperty("--out", "0");
  }
}

// --- start / stop ------------------------------------------------------------------------------------

async function start() {
  ui.start.disabled = true;
  setStatus("connecting", "Connecting…");
  const runners = { assistant: startAssistant, transcription: startTranscription, translation: startTranslation };
  try {
    state.session = await runners[state.mode]();
    ui.start.textContent = "Stop";
    ui.mute.hidden = false;
  } catch (error) {
    state.session = null;
    setStatus("idle", "Ready");
    toast(error.message);
  } finally {
    ui.start.disabled = false;
  }
}

async function stop(reason) {
  const session = state.session;
  if (!session) return;
  state.session = null;
  ui.start.disabled = true;
  setStatus("stopping", "Stopping…");
  try {
    await session.stop();
  } finally {
    ui.start.disabled = false;
    ui.start.textContent = "Start";
    ui.mute.hidden = true;
    ui.mute.setAttribute("aria-pressed", "false");
    ui.mute.textContent = "Mute";
    document.body.classList.remove("speaking");
    captions.settle();
    setStatus("idle", "Ready");
    if (reason) toast(reason);
  }
}

function toggleMute() {
  if (!state.session) return;
  const muted = ui.mute.getAttribute("aria-pressed") !== "true";
  state.session.mute(muted);
  ui.mute.setAttribute("aria-pressed", String(muted));
  ui.mute.textContent = muted ? "Unmute" : "Mute";
}

// A session's microphone, audio context and meters, torn down together.
async function openAudio() {
  const mic = await microphone();
  const context = new AudioContext();
  await context.resume();
  const meters = new Meters(context);
  meters.input = meters.analyse(context.createMediaStreamSource(mic));
  return {
    mic,
    context,
    meters,
    mute(on) {
      for (const track of mic.getAudioTracks()) track.enabled = !on;
    },
    close() {
      meters.close();
      for (const track of mic.getTracks()) track.stop();
      context.close();
    },
  };
}

// --- the assistant: a WebRTC call -------------------------------------------------------------------

async function startAssistant() {
  const session = {
    type: "realtime",
    instructions: ui.instructions.value.trim() || undefined,
    audio: {
      input: { transcription: { model: TRANSCRIPTION_MODEL }, turn_detection: { type: "server_vad" } },
      output: { voice: ui.voice.value },
    },
  };
  if (ui.tools.checked) session.tools = [CLOCK_TOOL];
  const audio = await openAudio();
  try {
    const token = await mint(MINT_PATH, session);
    let call = null;
    let stoppedAt = null; // performance.now() at input_audio_buffer.speech_stopped
    const onEvent = (event) => {
      count(event.type);
      switch (event.type) {
        case "session.created":
          setStatus("live", "Listening");
          break;
        case "input_audio_buffer.speech_started":
          stoppedAt = null;
          audio.meters.heardFrom = null;
          captions.line(event.item_id, "user");
          captions.mark(event.item_id, "user", "listening");
          setStatus("live", "Hearing you…");
          break;
        case "input_audio_buffer.speech_stopped":
          stoppedAt = performance.now();
          audio.meters.heardFrom = stoppedAt;
          setStatus("busy", "Thinking…");
          break;
        case "input_audio_buffer.committed":
          captions.line(event.item_id, "user");
          captions.place(event.item_id, event.previous_item_id);
          captions.mark(event.item_id, "user", "");
          break;
        case "conversation.item.input_audio_transcription.delta":
          captions.append(event.item_id, "user", event.delta);
          break;
        case "conversation.item.input_audio_transcription.completed":
          if (event.transcript.trim()) captions.finish(event.item_id, "user", event.transcript);
          else captions.remove(event.item_id);
          break;
        case "conversation.item.input_audio_transcription.failed":
          captions.finish(event.item_id, "user", "(not understood)");
          break;
        case "conversation.item.added":
          if (event.item?.type === "message" && event.item.role === "assistant") {
            captions.line(event.item.id, "assistant");
            captions.place(event.item.id, event.previous_item_id);
          }
          break;
        case "response.output_audio_transcript.delta":
        case "response.output_text.delta":
          captions.append(event.item_id, "assistant", event.delta);
          break;
        case "response.output_audio_transcript.done":
          captions.finish(event.item_id, "assistant", event.transcript);
          break;
        case "response.output_text.done":
          captions.finish(event.item_id, "assistant", event.text);
          break;
        case "output_audio_buffer.started":
          document.body.classList.add("speaking");
          setStatus("live", "Speaking");
          if (stoppedAt !== null) {
            const ms = Math.round(performance.now() - stoppedAt);
            stats.latencyMs.push(ms);
            ui.latency.textContent = `${ms} ms`;
            stoppedAt = null;
          }
          break;
        case "output_audio_buffer.stopped":
        case "output_audio_buffer.cleared":
          document.body.classList.remove("speaking");
          setStatus("live", "Listening");
          break;
        case "conversation.item.truncated":
          captions.mark(event.item_id, "assistant", "interrupted");
          break;
        case "response.output_item.done":
          if (event.item?.type === "function_call") runTool(call, event.item);
          break;
        case "response.done":
          if (event.response?.status === "failed") {
            toast(event.response.status_details?.error?.message ?? "The answer failed.");
          }
          break;
        case "error":
          toast(event.error?.message ?? "The server reported an error.");
          break;
      }
    };
    call = await openCall({
      path: CALLS_PATH,
      token,
      microphone: audio.mic,
      onEvent,
      onStream: (stream) => {
        ui.speaker.srcObject = stream; // played by the element; measured by the meter
        audio.meters.output = audio.meters.analyse(audio.context.createMediaStreamSource(stream));
      },
      onDrop: () => stop("The call ended."),
    });
    return {
      mute: (on) => audio.mute(on),
      stop: async () => {
        call.close();
        ui.speaker.srcObject = null;
        audio.close();
      },
    };
  } catch (error) {
    audio.close();
    throw error;
  }
}

function runTool(call, item) {
  captions.tool(item.call_id, item.name, item.arguments || "");
  let result;
  if (item.name === CLOCK_TOOL.name) {
    const now = new Date();
    result = { date: now.toLocaleDateString(), time: now.toLocaleTimeString(), zone: Intl.DateTimeFormat().resolvedOptions().timeZone };
  } else {
    result = { error: `This page has no tool named ${item.name}.` };
  }
  const output = JSON.stringify(result);
  captions.toolResult(item.call_id, output);
  call.send({ type: "conversation.item.create", item: { type: "function_call_output", call_id: item.call_id, output } });
  call.send({ type: "response.create" });
}

// --- live captions: a transcription call --------------------------------------------------------------

async function startTranscription() {
  const session = {
    type: "transcription",
    audio: {
      input: {
        transcription: { model: TRANSCRIPTION_MODEL, language: "en" },
        turn_detection: { type: "server_vad", silence_duration_ms: Number(ui.silence.value) },
      },
    },
  };
  const audio = await openAudio();
  try {
    const token = await mint(MINT_PATH, session);
    const onEvent = (event) => {
      count(event.type);
      switch (event.type) {
        case "session.created":
          setStatus("live", "Listening");
          break;
        case "input_audio_buffer.speech_started":
          captions.line(event.item_id, "caption");
          captions.mark(event.item_id, "caption", "listening");
          break;
        case "input_audio_buffer.committed":
          captions.line(event.item_id, "caption");
          captions.place(event.item_id, event.previous_item_id);
          captions.mark(event.item_id, "caption", "");
          break;
        case "conversation.item.input_audio_transcription.delta":
          captions.append(event.item_id, "caption", event.delta);
          break;
        case "conversation.item.input_audio_transcription.completed":
          if (event.transcript.trim()) captions.finish(event.item_id, "caption", event.transcript);
          else captions.remove(event.item_id);
          break;
        case "conversation.item.input_audio_transcription.failed":
          captions.finish(event.item_id, "caption", "(not understood)");
          break;
        case "error":
          toast(event.error?.message ?? "The server reported an error.");
          break;
      }
    };
    const call = await openCall({
      path: CALLS_PATH,
      token,
      microphone: audio.mic,
      onEvent,
      onStream: () => {},
      onDrop: () => stop("The session ended."),
    });
    return {
      mute: (on) => audio.mute(on),
      stop: async () => {
        call.close();
        audio.close();
      },
    };
  } catch (error) {
    audio.close();
    throw error;
  }
}

// --- live translation: a translation call -----------------------------------------------------------

async function startTranslation() {
  const language = ui.language.value;
  if (!language) throw new Error("This server cannot translate into any language.");
  const session = {
    model: TRANSLATION_MODEL,
    audio: { input: { transcription: { model: TRANSLATION_CAPTIONS_MODEL } }, output: { language } },
  };
  const audio = await openAudio();
  audio.meters.showsSpeaking = true;
  try {
    const token = await mint(MINT_TRANSLATION_PATH, session);
    const rows = { source: 0, target: 0 };
    let closed;
    const finished = new Promise((resolve) => (closed = resolve));
    const onEvent = (event) => {
      count(event.type);
      switch (event.type) {
        case "session.created":
          setStatus("live", "Listening");
          break;
        case "session.input_transcript.delta":
          rows.source = row("source", rows.source, event.delta);
          break;
        case "session.output_transcript.delta":
          rows.target = row("target", rows.target, event.delta);
          break;
        case "session.closed":
          closed();
          break;
        case "error":
          toast(event.error?.message ?? "The server reported an error.");
          break;
      }
    };
    const onDrop = () => {
      closed();
      stop("The session ended."); // nothing to do when Stop ended it
    };
    const call = await openCall({
      path: TRANSLATION_CALLS_PATH,
      token,
      microphone: audio.mic,
      onEvent,
      onStream: (stream) => {
        ui.speaker.srcObject = stream;
        audio.meters.output = audio.meters.analyse(audio.context.createMediaStreamSource(stream));
      },
      onDrop,
    });
    return {
      mute: (on) => audio.mute(on),
      stop: async () => {
        // The last words are still being translated: close the session and let them come.
        await call.stopSending();
        call.send({ type: "session.close" });
        setStatus("stopping", "Finishing the translation…");
        await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, CLOSE_DRAIN_MS))]);
        await audio.meters.quiet(TAIL_QUIET_MS, CLOSE_DRAIN_MS); // the last words still playing
        call.close();
        ui.speaker.srcObject = null;
        audio.close();
      },
    };
  } catch (error) {
    audio.close();
    throw error;
  }
}

// Translation captions: a new line for each sentence, one stream of lines per side.
function row(side, index, delta) {
  const id = `${side}:${index}`;
  captions.append(id, side, delta);
  const line = captions.line(id, side);
  if (SENTENCE_END.test(line.content)) {
    captions.finish(id, side);
    return index + 1;
  }
  return index;
}

boot();
