#!/usr/bin/env node
// Drives Microsoft's own Direct Line client (botframework-directlinejs) against a Warmline server
// and prints one JSON document describing what the client saw. The Python test judges it.
//
//   node directline-client.js --domain http://127.0.0.1:PORT/v3/directline --secret S \
//        --scenario websocket|polling [--timeout-ms 20000]
//
// The run: start a conversation with the secret, send two messages and wait for both echo
// replies, end() the client (which closes its socket), post two more messages over plain HTTP
// while no client is connected, then reconnect with a new DirectLine given {token,
// conversationId, watermark}, send one more message and wait for its reply.
'use strict';

const NodeXMLHttpRequest = require('xhr2');
const NodeWebSocket = require('ws');

// Every HTTP request and WebSocket the client makes, so the test can see *how* it talked to us.
const requests = [];
const sockets = [];

function describeUrl(raw) {
  const url = new URL(raw);
  const query = {};
  for (const [key, value] of url.searchParams) query[key] = key === 't' ? '<token>' : value;
  return { path: url.pathname, query };
}

class TrackedXMLHttpRequest extends NodeXMLHttpRequest {
  open(method, url, ...rest) {
    const entry = { method, ...describeUrl(url), status: null };
    requests.push(entry);
    this.addEventListener('loadend', () => {
      entry.status = this.status;
    });
    return super.open(method, url, ...rest);
  }
}

class TrackedWebSocket extends NodeWebSocket {
  constructor(url, ...rest) {
    super(url, ...rest);
    const entry = { ...describeUrl(url), hasToken: new URL(url).searchParams.has('t'), opened: false };
    sockets.push(entry);
    entry.closedPromise = new Promise((resolve) => {
      this.on('close', (code) => {
        entry.closeCode = code;
        resolve();
      });
    });
    this.on('open', () => {
      entry.opened = true;
    });
  }
}

// directlinejs expects browser globals: rxjs ajax needs XMLHttpRequest, the stream needs WebSocket.
// They must exist before the DirectLine constructor runs (it checks `typeof WebSocket`).
global.XMLHttpRequest = TrackedXMLHttpRequest;
global.WebSocket = TrackedWebSocket;

const { DirectLine, ConnectionStatus } = require('botframework-directlinejs');

function parseArgs(argv) {
  const options = { scenario: 'websocket', timeoutMs: 20000 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`missing value for ${key}`);
    if (key === '--domain') options.domain = value.replace(/\/+$/, '');
    else if (key === '--secret') options.secret = value;
    else if (key === '--scenario') options.scenario = value;
    else if (key === '--timeout-ms') options.timeoutMs = Number(value);
    else throw new Error(`unknown argument ${key}`);
  }
  if (!options.domain || !options.secret) throw new Error('--domain and --secret are required');
  if (!['websocket', 'polling'].includes(options.scenario)) {
    throw new Error(`--scenario must be websocket or polling, not ${options.scenario}`);
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));
const report = { scenario: options.scenario, domain: options.domain, phases: [], disconnected: {} };
let stage = 'starting';

// Bounded: a hung client must fail the test with a reason, never hang it.
const deadline = setTimeout(() => {
  fail(`timed out after ${options.timeoutMs} ms while ${stage}`);
}, options.timeoutMs);

function print() {
  report.requests = requests;
  report.sockets = sockets.map(({ closedPromise, ...entry }) => entry);
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

function fail(message) {
  report.error = message;
  process.stderr.write(`directline-client: ${message}\n`);
  print();
  process.exit(1);
}

function transportOptions() {
  return options.scenario === 'websocket'
    ? { webSocket: true }
    : { webSocket: false, pollingInterval: 200 };
}

// One connected DirectLine and everything it reported, with a way to await a given activity.
class Session {
  constructor(name, directLineOptions) {
    this.name = name;
    this.client = new DirectLine({ domain: options.domain, ...transportOptions(), ...directLineOptions });
    this.record = { name, statuses: [], activities: [], posted: [], finalWatermark: null };
    report.phases.push(this.record);
    this.waiters = [];
    this.client.connectionStatus$.subscribe((status) => {
      this.record.statuses.push(ConnectionStatus[status]);
    });
    this.subscription = this.client.activity$.subscribe(
      (activity) => this.receive(activity),
      (error) => {
        // end() makes the stream error with "conversation ended"; anything else is a failure.
        this.record.streamError = String(error && error.message ? error.message : error);
        if (!this.ending) fail(`${name}: activity stream failed: ${this.record.streamError}`);
      },
    );
  }

  receive(activity) {
    this.record.activities.push({
      id: activity.id,
      type: activity.type,
      text: activity.text,
      from: activity.from,
      replyToId: activity.replyToId,
      channelData: activity.channelData,
      // The client advances its watermark before it emits a frame's activities.
      watermark: this.client.watermark,
    });
    this.waiters = this.waiters.filter((waiter) => !waiter(activity));
  }

  // Resolves with the first activity (already seen or still to come) matching `predicate`.
  waitFor(description, predicate) {
    stage = `${this.name}: waiting for ${description}`;
    const seen = this.record.activities.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      this.waiters.push((activity) => {
        if (!predicate(activity)) return false;
        resolve(activity);
        return true;
      });
    });
  }

  post(text, clientActivityID) {
    stage = `${this.name}: posting "${text}"`;
    const activity = {
      type: 'message',
      text,
      from: { id: 'directlinejs-user', name: 'Directline JS' },
      channelData: { clientActivityID },
    };
    return new Promise((resolve, reject) => {
      this.client.postActivity(activity).subscribe(
        (id) => {
          this.record.posted.push({ text, clientActivityID, id });
          resolve(id);
        },
        (error) => reject(new Error(`postActivity("${text}") failed: status ${error && error.status}`)),
      );
    });
  }

  // Sends `text` and waits until both its echo and the bot's reply to it have arrived.
  async turn(text, clientActivityID) {
    const id = await this.post(text, clientActivityID);
    if (id === 'retry') throw new Error(`postActivity("${text}") answered "retry"`);
    await this.waitFor(`the echo of ${id}`, (a) => a.id === id);
    await this.waitFor(`the reply to ${id}`, (a) => a.replyToId === id);
    return id;
  }

  // Ends the client and resolves once its socket (if any) is really closed.
  end() {
    stage = `${this.name}: ending`;
    this.ending = true;
    this.record.finalWatermark = this.client.watermark;
    this.client.end();
    this.subscription.unsubscribe();
    return Promise.all(sockets.map((socket) => socket.closedPromise));
  }

  // What the client's refresh loop does every 15 minutes, done now: POST tokens/refresh.
  refreshToken() {
    stage = `${this.name}: refreshing the token`;
    return new Promise((resolve, reject) => {
      this.client.refreshToken().subscribe(
        (token) => {
          this.record.refreshed = token !== this.client.token;
          this.client.token = token;
          resolve(token);
        },
        (error) => reject(new Error(`refreshToken failed: status ${error && error.status}`)),
      );
    });
  }
}

// What a second party does while the customer's client is away: plain HTTP with the token.
async function postOverHttp(conversationId, token, text) {
  stage = `disconnected: posting "${text}" over HTTP`;
  const response = await fetch(`${options.domain}/conversations/${conversationId}/activities`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ type: 'message', text, channelData: { clientActivityID: `http-${text}` } }),
  });
  const body = await response.json();
  if (response.status !== 200) throw new Error(`POST ${text}: ${response.status} ${JSON.stringify(body)}`);
  return body.id;
}

async function main() {
  const first = new Session('first', { secret: options.secret });
  const greeting = await first.waitFor('the greeting', (a) => a.type === 'message' && /^Hello/.test(a.text || ''));
  await first.turn('first message', 'js-1');
  await first.turn('second message', 'js-2');
  const conversationId = first.client.conversationId;
  // With a secret the client keeps using the secret; the conversation token comes from its start
  // response, which a page would have got from tokens/generate. Ask the server for one the same way.
  const token = await conversationToken(conversationId);
  report.conversationId = conversationId;
  report.greetingId = greeting.id;
  await first.end();

  const watermark = first.record.finalWatermark;
  report.disconnected = { watermark, posted: [] };
  for (const text of ['while away one', 'while away two']) {
    report.disconnected.posted.push({ text, id: await postOverHttp(conversationId, token, text) });
  }

  const second = new Session('second', { token, conversationId, watermark });
  for (const { id } of report.disconnected.posted) {
    await second.waitFor(`the missed activity ${id}`, (a) => a.id === id);
    await second.waitFor(`the missed reply to ${id}`, (a) => a.replyToId === id);
  }
  await second.refreshToken();
  await second.turn('third message', 'js-3');
  report.token = second.client.token;
  await second.end();

  clearTimeout(deadline);
  stage = 'done';
  print();
  // directlinejs leaves timers (token refresh, pings) behind; the run is over.
  process.exit(0);
}

// Reconnect needs a token: GET /conversations/{id} with the secret returns a fresh one bound to
// this conversation, exactly what directlinejs itself calls on reconnect.
async function conversationToken(conversationId) {
  stage = 'fetching a conversation token';
  const response = await fetch(`${options.domain}/conversations/${conversationId}`, {
    headers: { Authorization: `Bearer ${options.secret}`, Accept: 'application/json' },
  });
  const body = await response.json();
  if (response.status !== 200 || !body.token) {
    throw new Error(`GET conversation for a token: ${response.status} ${JSON.stringify(body)}`);
  }
  return body.token;
}

main().catch((error) => fail(error && error.stack ? error.stack : String(error)));
