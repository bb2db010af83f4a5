// An integrator's patient day and therapist read, typed from openapi/openapi.json alone.
//
// `schema.d.ts` is what openapi-typescript writes from the committed spec with its default flags
// (never committed); openapi-fetch does the requests. The script is written to the contract the
// server honours: a field it always sends is read directly, a header it always sends is read
// through the spec's declaration of it, and what the spec makes looser than the server (a plain
// string for a closed set, an optional header the server requires) fails to compile. Nothing is
// cast, asserted non-null or suppressed. Every answer is checked; the first unexpected one throws,
// and node exits non-zero.
//
// Inputs (environment): KAP_BASE_URL, KAP_PATIENT_EMAIL, KAP_PATIENT_PASSWORD, and the therapist
// an operator invited and who signed up: KAP_THERAPIST_EMAIL, KAP_THERAPIST_PASSWORD,
// KAP_THERAPIST_NAME, KAP_THERAPIST_CLINIC.

import createClient from "openapi-fetch";
import type { components, operations, paths } from "./schema.js";

// Node's globals, as far as this script uses them (no @types/node needed for one variable).
declare const process: { env: Record<string, string | undefined> };

type Schemas = components["schemas"];

// --- Inputs -----------------------------------------------------------------------------------

function input(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`set ${name}`);
  return value;
}

const BASE_URL = input("KAP_BASE_URL");
const PATIENT = { email: input("KAP_PATIENT_EMAIL"), password: input("KAP_PATIENT_PASSWORD") };
const THERAPIST = {
  email: input("KAP_THERAPIST_EMAIL"),
  password: input("KAP_THERAPIST_PASSWORD"),
  name: input("KAP_THERAPIST_NAME"),
  clinic: input("KAP_THERAPIST_CLINIC"),
};

// --- Checks -----------------------------------------------------------------------------------

function fail(message: string): never {
  throw new Error(message);
}

function check(condition: boolean, message: string): void {
  if (!condition) fail(message);
}

function same<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${what}: expected ${e}, got ${a}`);
}

function sameSet(actual: readonly string[], expected: readonly string[], what: string): void {
  same([...actual].sort(), [...expected].sort(), what);
}

function sameInstant(actual: string, expected: string, what: string): void {
  if (Date.parse(actual) !== Date.parse(expected)) fail(`${what}: expected ${expected}, got ${actual}`);
}

type Answer<T> = { data?: T; error?: unknown; response: Response };

/** The body of an answer that must have this status. */
async function expect<T>(call: Promise<Answer<T>>, status: number, what: string): Promise<{ data: T; response: Response }> {
  const { data, error, response } = await call;
  if (response.status !== status || data === undefined) {
    fail(`${what}: expected ${status}, got ${response.status} ${JSON.stringify(error ?? data)}`);
  }
  return { data, response };
}

/** A 204: nothing to read but the status. */
async function expectNoContent(call: Promise<Answer<unknown>>, what: string): Promise<Response> {
  const { error, response } = await call;
  if (response.status !== 204) fail(`${what}: expected 204, got ${response.status} ${JSON.stringify(error)}`);
  return response;
}

/** The problem of an answer that must be refused with this status. */
async function expectProblem<P extends { type: string; status: number }>(
  call: Promise<{ error?: P; response: Response }>,
  status: number,
  type: string,
  what: string,
): Promise<P> {
  const { error, response } = await call;
  if (error === undefined) fail(`${what}: expected ${status} ${type}, got ${response.status}`);
  same([response.status, error.status, error.type], [status, status, type], what);
  same(response.headers.get("content-type"), "application/problem+json", `${what}: media type`);
  return error;
}

// --- Headers, as the spec declares them -------------------------------------------------------

type ResponseOf<Op, Status extends number> = Op extends { responses: infer R }
  ? Status extends keyof R
    ? R[Status]
    : never
  : never;
type HeadersOf<Op, Status extends number> = ResponseOf<Op, Status> extends { headers: infer H } ? H : never;
/** The headers a response declares (without the `[name: string]: unknown` of every response)... */
type DeclaredHeader<H> = keyof { [K in keyof H as string extends K ? never : number extends K ? never : K]: H[K] } & string;
/** ...and of those, the ones declared `required`: always sent. */
type SentHeader<H> = { [K in DeclaredHeader<H>]-?: {} extends Pick<H, K> ? never : K }[DeclaredHeader<H>];

/** A header the spec says this response always carries. */
function sentHeader<Op, Status extends number>(response: Response, name: SentHeader<HeadersOf<Op, Status>>): string {
  const value = response.headers.get(name);
  if (value === null) fail(`${response.url}: no ${name} header`);
  return value;
}

/** A header the spec says this response may carry. */
function declaredHeader<Op, Status extends number>(
  response: Response,
  name: DeclaredHeader<HeadersOf<Op, Status>>,
): string | null {
  return response.headers.get(name);
}

// --- What the spec must say about requests (no call can show it) ------------------------------

/** Compiles only when `Actual` is within `Expected`; the error shows what the spec says instead. */
type MustBe<Expected, Actual extends Expected> = Actual;
type HeaderParams<Op> = Op extends { parameters: { header?: infer H } } ? NonNullable<H> : never;

// The server answers 428 without If-Match: required, and a header is a string, never null.
export type IfMatchOnPatch = MustBe<string, HeaderParams<operations["update_checkin"]>["if-match"]>;
export type IfMatchOnDelete = MustBe<string, HeaderParams<operations["delete_checkin"]>["if-match"]>;
// Idempotency-Key may be left out, but it is never null either.
export type IdempotencyKeyOnPost = MustBe<string | undefined, HeaderParams<operations["create_checkin"]>["idempotency-key"]>;
// The token endpoint refuses a request without a form (400 invalid_request): the body is required.
export type TokenFormRequired = MustBe<object, operations["issue_token"]["requestBody"]>;

// --- The token endpoint, form-encoded (RFC 6749) ----------------------------------------------

type TokenForm = NonNullable<operations["issue_token"]["requestBody"]>["content"]["application/x-www-form-urlencoded"];
// One form per grant: the spec must say which fields each grant needs.
type PasswordForm = Extract<TokenForm, { grant_type: "password" }>;
type RefreshForm = Extract<TokenForm, { grant_type: "refresh_token" }>;
const FORM = { "Content-Type": "application/x-www-form-urlencoded" };

const anonymous = createClient<paths>({ baseUrl: BASE_URL });

function bearer(token: string) {
  return createClient<paths>({ baseUrl: BASE_URL, headers: { Authorization: `Bearer ${token}` } });
}

function checkTokens(tokens: Schemas["TokenResponse"], what: string): void {
  const type: "Bearer" = tokens.token_type;
  same(type, "Bearer", `${what}: token_type`);
  check(tokens.expires_in > 0 && tokens.expires_in <= 900, `${what}: expires_in ${tokens.expires_in}`);
  check(tokens.refresh_token.startsWith("rt_"), `${what}: refresh_token`);
  check(tokens.access_token.split(".").length === 3, `${what}: access_token is a JWT`);
}

async function signIn(email: string, password: string): Promise<Schemas["TokenResponse"]> {
  const form: PasswordForm = { grant_type: "password", username: email, password };
  const { data } = await expect(anonymous.POST("/v1/auth/token", { body: form, headers: FORM }), 200, "password grant");
  checkTokens(data, "password grant");
  return data;
}

// --- Labels an app shows: one for every value the API can send --------------------------------

const BAND_LABELS: { [band in Schemas["AssessmentRead"]["band"]]: string } = {
  minimal: "Minimal",
  mild: "Mild",
  moderate: "Moderate",
  moderately_severe: "Moderately severe",
  severe: "Severe",
  provisional_positive: "Provisional positive",
  below_threshold: "Below threshold",
};
const LOGGED_RESOURCES: { [resource in Schemas["AccessLogEntry"]["resource"]]: string } = {
  sessions: "dosing sessions",
  intentions: "intentions",
  reflections: "reflections",
  checkins: "mood check-ins",
  assessments: "questionnaires",
  summary: "summary",
  safety_flags: "safety flags",
  grant: "journal",
  patients: "patient list",
};
const LOGGED_ACTIONS: { [action in Schemas["AccessLogEntry"]["action"]]: string } = {
  list: "listed",
  read: "read",
  summary: "summarised",
  acknowledge: "acknowledged",
  open: "opened",
};
const ENDED_BY: { [who in NonNullable<Schemas["GrantRead"]["revoked_by"]>]: string } = {
  patient: "you revoked it",
  therapist: "your therapist gave it up",
  operator: "the service ended it",
};

const WINDOW_LABELS: { [name in Schemas["MoodWindowOut"]["name"]]: string } = {
  before: "72 hours before",
  during: "during the session",
  day_0_1: "first day after",
  days_1_3: "days 1-3",
  days_3_7: "days 3-7",
  days_7_14: "days 7-14",
};
const KIND_LABELS: { [kind in Schemas["DeletionMarker"]["resource"]]: string } = {
  sessions: "a dosing session",
  intentions: "an intention",
  reflections: "a reflection",
  checkins: "a mood check-in",
  assessments: "a questionnaire",
};

function windowLabel(window: Schemas["MoodWindowOut"]): string {
  const label: string = WINDOW_LABELS[window.name];
  return label;
}

function deletedLabel(marker: Schemas["DeletionMarker"]): string {
  const label: string = KIND_LABELS[marker.resource];
  return `you deleted ${label}`;
}

function bandLabel(assessment: Schemas["AssessmentRead"]): string {
  const label: string = BAND_LABELS[assessment.band];
  return label;
}

function grantStatus(grant: Schemas["GrantRead"]): string {
  const endedBy: string | null = grant.revoked_by === null ? null : ENDED_BY[grant.revoked_by];
  return endedBy ?? grant.state;
}

function accessLine(entry: Schemas["AccessLogEntry"]): string {
  const resource: string = LOGGED_RESOURCES[entry.resource];
  const action: string = LOGGED_ACTIONS[entry.action];
  return `${entry.therapist_name ?? "someone"} ${action} your ${resource}: ${entry.outcome}`;
}

// The app's own records of what it shows: nullable where the server sends null.
type CrisisLine = { name: string; phone: string | null; text: string | null; url: string | null };

function crisisLine(resource: Schemas["CrisisResource"]): CrisisLine {
  return { name: resource.name, phone: resource.phone, text: resource.text, url: resource.url };
}

function checkCrisisResources(resources: Schemas["CrisisResource"][], what: string): void {
  const lines = resources.map(crisisLine);
  check(lines.length > 0, `${what}: crisis resources`);
  check(
    lines.every((line) => line.name !== "" && (line.phone !== null || line.url !== null)),
    `${what}: every crisis resource says how to reach it ${JSON.stringify(lines)}`,
  );
}

type FlagView = {
  state: Schemas["FlagState"];
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  acknowledgedByName: string | null;
  note: string | null;
  laterPhq9: Schemas["LatestPhq9"] | null;
  visibleToTherapist: boolean | null;
};

function flagView(flag: Schemas["SafetyFlagRead"]): FlagView {
  return {
    state: flag.state,
    acknowledgedAt: flag.acknowledged_at,
    acknowledgedBy: flag.acknowledged_by,
    acknowledgedByName: flag.acknowledged_by_name,
    note: flag.note,
    laterPhq9: flag.latest_phq9,
    visibleToTherapist: flag.visible_to_therapist,
  };
}

function only<T>(items: readonly T[], what: string): T {
  const [first, ...rest] = items;
  if (first === undefined || rest.length > 0) fail(`${what}: expected exactly one, got ${items.length}`);
  return first;
}

const ids = (items: readonly { id: string }[]): string[] => items.map((item) => item.id);
const hoursAgo = (hours: number): string => new Date(Date.now() - hours * 3_600_000).toISOString();
const key = (what: string): string => `ts-client-${what}-${crypto.randomUUID()}`;

// --- The patient signs up and signs in --------------------------------------------------------

const { data: account, response: created } = await expect(
  anonymous.POST("/v1/accounts", {
    body: {
      email: PATIENT.email,
      password: PATIENT.password,
      display_name: "Ada",
      role: "patient",
      time_zone: "Europe/Berlin",
    },
  }),
  201,
  "sign up",
);
same([account.email, account.role, account.display_name, account.time_zone], [PATIENT.email, "patient", "Ada", "Europe/Berlin"], "account");
const clinic: string | null = account.clinic;
same([account.verified, clinic], [false, null], "a patient is not verified and has no clinic");
same(sentHeader<operations["create_account"], 201>(created, "Location"), "/v1/me", "sign up Location");
same(sentHeader<operations["create_account"], 201>(created, "ETag"), '"1"', "sign up ETag");

const first = await signIn(PATIENT.email, PATIENT.password);
const refreshForm: RefreshForm = { grant_type: "refresh_token", refresh_token: first.refresh_token };
const { data: tokens } = await expect(
  anonymous.POST("/v1/auth/token", {
    body: refreshForm,
    headers: FORM,
    params: { header: { "idempotency-key": key("refresh") } },
  }),
  200,
  "refresh grant",
);
checkTokens(tokens, "refresh grant");
check(tokens.refresh_token !== first.refresh_token, "a refresh returns a new refresh token");
const patient = bearer(tokens.access_token);

const { data: me, response: meAnswer } = await expect(patient.GET("/v1/me"), 200, "GET /v1/me");
same(me.id, account.id, "the refreshed token is the patient's");
same(sentHeader<operations["get_me"], 200>(meAnswer, "ETag"), '"1"', "GET /v1/me ETag");

// --- A patient's day --------------------------------------------------------------------------

const startedAt = hoursAgo(6);
const endedAt = hoursAgo(4);
const { data: session, response: sessionAnswer } = await expect(
  patient.POST("/v1/sessions", {
    body: { started_at: startedAt, ended_at: endedAt, route: "sublingual", dose_mg: 100, setting: "home", notes: "Music, eyeshade", private: false },
    params: { header: { "idempotency-key": key("session") } },
  }),
  201,
  "dosing session",
);
const sessionEnd: string | null = session.ended_at;
if (sessionEnd === null) fail("dosing session: ended_at was sent");
sameInstant(session.started_at, startedAt, "dosing session started_at");
sameInstant(sessionEnd, endedAt, "dosing session ended_at");
same([session.route, session.setting, session.dose_mg, session.notes, session.version, session.private], ["sublingual", "home", 100, "Music, eyeshade", 1, false], "dosing session");
same(session.clock_adjusted, false, "dosing session clock_adjusted");
same(sentHeader<operations["create_session"], 201>(sessionAnswer, "Location"), `/v1/sessions/${session.id}`, "session Location");
same(sentHeader<operations["create_session"], 201>(sessionAnswer, "ETag"), '"1"', "session ETag");

const { data: intention } = await expect(
  patient.POST("/v1/intentions", {
    body: { text: "Be gentler with myself", session_id: session.id, status: "active", private: false },
    params: { header: { "idempotency-key": key("intention") } },
  }),
  201,
  "intention",
);
same([intention.text, intention.session_id, intention.status], ["Be gentler with myself", session.id, "active"], "intention");

const { data: reflection } = await expect(
  patient.POST("/v1/reflections", {
    body: {
      text: "A wide open feeling",
      session_id: session.id,
      intention_ids: [intention.id],
      emotions: ["calm"],
      prompts: [{ prompt: "What surprised you?", answer: "How calm it was" }],
      private: false,
    },
    params: { header: { "idempotency-key": key("reflection") } },
  }),
  201,
  "reflection",
);
same([reflection.session_id, reflection.intention_ids, reflection.emotions, reflection.prompts], [session.id, [intention.id], ["calm"], [{ prompt: "What surprised you?", answer: "How calm it was" }]], "reflection");

// A check-in sent twice with one Idempotency-Key (an answer lost on the way): one entry.
const morningKey = key("checkin");
const morningBody = { mood: 6, anxiety: 3, sleep_hours: 7.5, note: "slept well", private: false };
const { data: morning } = await expect(
  patient.POST("/v1/checkins", { body: morningBody, params: { header: { "idempotency-key": morningKey } } }),
  201,
  "check-in",
);
const morningNote: string | null = morning.note;
same([morning.mood, morning.anxiety, morning.energy, morning.sleep_hours, morningNote, morning.backfilled], [6, 3, null, 7.5, "slept well", false], "check-in");
sameInstant(morning.received_at, morning.created_at, "check-in received_at");
const { data: replayed, response: replay } = await expect(
  patient.POST("/v1/checkins", { body: morningBody, params: { header: { "idempotency-key": morningKey } } }),
  201,
  "check-in resent",
);
same(replayed.id, morning.id, "a resend answers with the first check-in");
same(declaredHeader<operations["create_checkin"], 201>(replay, "Idempotent-Replayed"), "true", "Idempotent-Replayed");

const { data: backfilled } = await expect(
  patient.POST("/v1/checkins", { body: { recorded_at: hoursAgo(50), mood: 4, private: false }, params: { header: { "idempotency-key": key("backfilled") } } }),
  201,
  "backfilled check-in",
);
same([backfilled.backfilled, backfilled.note, backfilled.anxiety], [true, null, null], "a check-in 50 hours old is backfilled");

const { data: evening } = await expect(
  patient.POST("/v1/checkins", { body: { mood: 5, note: "tired", private: false }, params: { header: { "idempotency-key": key("evening") } } }),
  201,
  "evening check-in",
);

// A PHQ-9 with item 9 above 0: scored, flagged, with crisis resources.
const { data: phq9 } = await expect(
  patient.POST("/v1/assessments", {
    body: { instrument: "phq9", answers: [1, 1, 2, 1, 1, 1, 1, 1, 1], private: false },
    params: { header: { "idempotency-key": key("phq9") } },
  }),
  201,
  "PHQ-9",
);
same([phq9.instrument, phq9.total, phq9.band, bandLabel(phq9), phq9.safety_flag], ["phq9", 10, "moderate", "Moderate", true], "PHQ-9 score");
const pcl5Only: [Schemas["AssessmentRead"]["clusters"], boolean | null, string | null] = [phq9.clusters, phq9.meets_symptom_pattern, phq9.screening_result];
same(pcl5Only, [null, null, null], "PHQ-9 has no PCL-5 fields");
checkCrisisResources(phq9.crisis_resources, "PHQ-9");
const raised: Schemas["FlagNotice"] | null = phq9.raised_flag;
if (raised === null) fail("PHQ-9 with item 9 above 0: no raised_flag");
same([raised.state, raised.visible_to_therapist], ["open", false], "raised flag (no grant yet)");

const { data: gad7 } = await expect(
  patient.POST("/v1/assessments", {
    body: { instrument: "gad7", answers: [1, 1, 1, 1, 1, 0, 0], private: false },
    params: { header: { "idempotency-key": key("gad7") } },
  }),
  201,
  "GAD-7",
);
const gad7Flag: Schemas["FlagNotice"] | null = gad7.raised_flag;
same([gad7.total, bandLabel(gad7), gad7.safety_flag, gad7.crisis_resources.length, gad7Flag], [5, "Mild", false, 0, null], "GAD-7");

// --- Lists, a page at a time ------------------------------------------------------------------

const { data: page1 } = await expect(patient.GET("/v1/checkins", { params: { query: { limit: 2 } } }), 200, "check-ins page 1");
const cursor: string | null = page1.next_cursor;
if (cursor === null) fail("check-ins page 1: next_cursor with a third check-in waiting");
const { data: page2 } = await expect(patient.GET("/v1/checkins", { params: { query: { limit: 2, cursor } } }), 200, "check-ins page 2");
same(page2.next_cursor, null, "check-ins page 2 is the last");
same([...ids(page1.items), ...ids(page2.items)].at(-1), backfilled.id, "check-ins newest first: the backfilled one last");
sameSet([...ids(page1.items), ...ids(page2.items)], [morning.id, backfilled.id, evening.id], "check-ins over two pages");
const { data: linked } = await expect(patient.GET("/v1/reflections", { params: { query: { session_id: session.id } } }), 200, "reflections of the session");
same(ids(linked.items), [reflection.id], "reflections of the session");

// --- Edit and delete with the ETag of a read --------------------------------------------------

const { data: read, response: readAnswer } = await expect(
  patient.GET("/v1/checkins/{entry_id}", { params: { path: { entry_id: evening.id } } }),
  200,
  "read a check-in",
);
same(read.version, 1, "check-in version");
const readTag = sentHeader<operations["get_checkin"], 200>(readAnswer, "ETag");
same(readTag, '"1"', "check-in ETag");
const { data: edited, response: editAnswer } = await expect(
  patient.PATCH("/v1/checkins/{entry_id}", {
    params: { path: { entry_id: evening.id }, header: { "if-match": readTag } },
    body: { note: "tired, then calmer" },
  }),
  200,
  "edit a check-in",
);
same([edited.version, edited.note, edited.mood], [2, "tired, then calmer", 5], "edited check-in");
const editTag = sentHeader<operations["update_checkin"], 200>(editAnswer, "ETag");
same(editTag, '"2"', "ETag after the edit");
await expectProblem(
  patient.DELETE("/v1/checkins/{entry_id}", { params: { path: { entry_id: evening.id }, header: { "if-match": readTag } } }),
  412,
  "/problems/precondition-failed",
  "delete against the version before the edit",
);
await expectNoContent(
  patient.DELETE("/v1/checkins/{entry_id}", { params: { path: { entry_id: evening.id }, header: { "if-match": editTag } } }),
  "delete a check-in",
);

// --- Sync from the start ----------------------------------------------------------------------

const { data: pulled } = await expect(patient.GET("/v1/sync", { params: { query: { cursor: "0" } } }), 200, "sync");
same(pulled.has_more, false, "sync has_more");
same(ids(pulled.changes.sessions), [session.id], "sync sessions");
same(ids(pulled.changes.intentions), [intention.id], "sync intentions");
same(ids(pulled.changes.reflections), [reflection.id], "sync reflections");
sameSet(ids(pulled.changes.checkins), [morning.id, backfilled.id], "sync check-ins");
sameSet(ids(pulled.changes.assessments), [phq9.id, gad7.id], "sync assessments");
same(pulled.deleted.checkins, [evening.id], "sync deletions");
same([pulled.deleted.sessions, pulled.deleted.intentions, pulled.deleted.reflections, pulled.deleted.assessments], [[], [], [], []], "no other deletions");
const { data: again } = await expect(patient.GET("/v1/sync", { params: { query: { cursor: pulled.next_cursor } } }), 200, "sync again");
same([again.next_cursor, again.has_more, again.changes.checkins.length, again.deleted.checkins.length], [pulled.next_cursor, false, 0, 0], "nothing new");

// --- The patient's summary and safety flags ---------------------------------------------------

const { data: summary } = await expect(patient.GET("/v1/me/summary", { params: { query: { days: 7, tz: "Europe/Berlin" } } }), 200, "summary");
same([summary.days, summary.tz, summary.mood.length, summary.shared_only], [7, "Europe/Berlin", 7, false], "summary");
same(summary.mood.reduce((sum, day) => sum + day.count, 0), 2, "summary counts the two check-ins left");
sameSet(summary.instruments.map((trend) => trend.instrument), ["phq9", "gad7"], "summary instruments");
for (const trend of summary.instruments) {
  const withheld: string | null = trend.response_withheld;
  check((trend.response === null) === (withheld !== null), `${trend.instrument}: response or why it is withheld`);
  const remissionWithheld: string | null = trend.remission_withheld;
  check((trend.remission === null) === (remissionWithheld !== null), `${trend.instrument}: remission or why it is withheld`);
}
const dosing = only(summary.dosing_sessions, "summary dosing sessions");
const acuteEnd: string | null = dosing.acute_end;
if (acuteEnd === null) fail("summary: acute_end of a session that ended");
sameInstant(acuteEnd, endedAt, "summary acute_end is the session's end");
same(dosing.acute_end_assumed, false, "acute_end_assumed");
same(dosing.windows.map(windowLabel), ["72 hours before", "during the session", "first day after", "days 1-3", "days 3-7", "days 7-14"], "mood windows around the session");
const durabilityDays: number | null = dosing.durability_days;
const durabilityWithheld: string | null = dosing.durability_withheld;
check((durabilityDays === null) === (durabilityWithheld !== null), `durability or why it is withheld: ${durabilityDays} ${durabilityWithheld}`);
same(only(summary.safety_flags, "summary safety flags").assessment_id, phq9.id, "summary safety flag");
checkCrisisResources(summary.crisis_resources, "summary");

const { data: myFlags } = await expect(patient.GET("/v1/me/safety-flags"), 200, "my safety flags");
const flag = only(myFlags.items, "my safety flags");
same([flag.assessment_id, flag.instrument, flag.item_value, flag.total], [phq9.id, "phq9", 1, 10], "safety flag");
same(flagView(flag), { state: "open", acknowledgedAt: null, acknowledgedBy: null, acknowledgedByName: null, note: null, laterPhq9: null, visibleToTherapist: false }, "open flag, no therapist yet");
same(flag.id, raised.id, "the flag is the one the PHQ-9 raised");

// --- The therapist pairs, the patient grants --------------------------------------------------

const therapistTokens = await signIn(THERAPIST.email, THERAPIST.password);
const therapist = bearer(therapistTokens.access_token);
const { data: therapistAccount } = await expect(therapist.GET("/v1/me"), 200, "therapist GET /v1/me");
same([therapistAccount.role, therapistAccount.verified, therapistAccount.clinic], ["therapist", true, THERAPIST.clinic], "an invited therapist is verified");

const { data: pairing } = await expect(
  therapist.POST("/v1/pairing-codes", { params: { header: { "idempotency-key": key("pairing") } } }),
  201,
  "pairing code",
);
check(/^[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}$/.test(pairing.code), `pairing code ${pairing.code}`);
check(Date.parse(pairing.expires_at) > Date.now(), "pairing code expires later");

const { data: preview } = await expect(
  patient.GET("/v1/pairing-codes/{code}", { params: { path: { code: pairing.code.toLowerCase() } } }),
  200,
  "preview the pairing code",
);
same([preview.therapist.display_name, preview.therapist.clinic, preview.therapist.verified], [THERAPIST.name, THERAPIST.clinic, true], "pairing preview");

const scopes: Schemas["ReadScope"][] = ["checkins:read", "summary:read", "assessments:read"];
const { data: grant, response: grantAnswer } = await expect(
  patient.POST("/v1/grants", {
    body: { pairing_code: pairing.code, scopes },
    params: { header: { "idempotency-key": key("grant") } },
  }),
  201,
  "grant",
);
same([grant.state, grant.patient.id, grant.therapist.id, grant.therapist.verified, grant.therapist.clinic], ["active", account.id, therapistAccount.id, true, THERAPIST.clinic], "grant");
same([grant.revoked_at, grant.revoked_by, grantStatus(grant)], [null, null, "active"], "a live grant");
sameSet(grant.scopes, scopes, "grant scopes");
same(sentHeader<operations["create_grant"], 201>(grantAnswer, "Location"), `/v1/grants/${grant.id}`, "grant Location");

// --- The therapist reads ----------------------------------------------------------------------

const { data: patients } = await expect(therapist.GET("/v1/patients"), 200, "therapist's patients");
const shared = only(patients.items, "therapist's patients");
const openFlags: number | null = shared.open_safety_flags;
same([shared.patient_id, shared.grant_id, shared.display_name, openFlags], [account.id, grant.id, "Ada", 1], "shared patient");

const { data: readToken } = await expect(
  therapist.POST("/v1/grants/{grant_id}/token", {
    params: { path: { grant_id: grant.id } },
    body: { scope: "checkins:read summary:read assessments:read" },
    headers: FORM,
  }),
  200,
  "read token",
);
const readTokenType: "Bearer" = readToken.token_type;
same([readTokenType, readToken.patient_id, readToken.grant_id], ["Bearer", account.id, grant.id], "read token");
sameSet(readToken.scope.split(" "), scopes, "read token scope");
check(readToken.expires_in > 0 && readToken.expires_in <= 900, `read token expires_in ${readToken.expires_in}`);
const reader = bearer(readToken.access_token);
const patientPath = { path: { patient_id: account.id } };

const { data: theirCheckins } = await expect(reader.GET("/v1/patients/{patient_id}/checkins", { params: patientPath }), 200, "shared check-ins");
sameSet(ids(theirCheckins.items), [morning.id, backfilled.id], "shared check-ins");
same(theirCheckins.next_cursor, null, "shared check-ins: one page");
const { data: theirSummary } = await expect(
  reader.GET("/v1/patients/{patient_id}/summary", { params: { ...patientPath, query: { days: 7 } } }),
  200,
  "shared summary",
);
same([theirSummary.shared_only, theirSummary.tz, theirSummary.safety_flags.length], [true, "Europe/Berlin", 1], "shared summary in the patient's days");
const { data: theirFlags } = await expect(reader.GET("/v1/patients/{patient_id}/safety-flags", { params: patientPath }), 200, "shared safety flags");
const theirFlag = only(theirFlags.items, "shared safety flags");
same([theirFlag.id, flagView(theirFlag).visibleToTherapist], [flag.id, null], "a therapist's view of the flag");
const note = "Called; safety plan reviewed.";
const { data: acknowledged } = await expect(
  reader.POST("/v1/patients/{patient_id}/safety-flags/{flag_id}/acknowledgement", {
    params: { path: { patient_id: account.id, flag_id: flag.id } },
    body: { note },
  }),
  200,
  "acknowledge the flag",
);
const ackView = flagView(acknowledged);
same([ackView.state, ackView.acknowledgedBy, ackView.acknowledgedByName, ackView.note], ["acknowledged", therapistAccount.id, THERAPIST.name, note], "acknowledged flag");
check(ackView.acknowledgedAt !== null, "acknowledged_at");
await expectProblem(
  reader.GET("/v1/patients/{patient_id}/reflections", { params: patientPath }),
  403,
  "/problems/forbidden",
  "reflections were not granted",
);

// --- What the patient sees of it --------------------------------------------------------------

const { data: flagsAfter } = await expect(patient.GET("/v1/me/safety-flags"), 200, "my safety flags after");
const after = flagView(only(flagsAfter.items, "my safety flags after"));
same([after.state, after.acknowledgedByName, after.note, after.visibleToTherapist], ["acknowledged", THERAPIST.name, note, true], "the patient sees the acknowledgement");

const { data: log } = await expect(patient.GET("/v1/me/access-log", { params: { query: { limit: 50 } } }), 200, "access log");
same(log.next_cursor, null, "access log: one page");
sameSet(
  log.items.map((entry) => `${entry.resource} ${entry.action} ${entry.outcome}`),
  [
    "grant open allowed",
    "patients list allowed",
    "checkins list allowed",
    "summary summary allowed",
    "safety_flags list allowed",
    "safety_flags acknowledge allowed",
    "reflections list insufficient_scope",
  ],
  "access log",
);
for (const entry of log.items) {
  same([entry.therapist_id, entry.therapist_verified, entry.therapist_clinic], [therapistAccount.id, true, THERAPIST.clinic], "access log therapist");
  check(accessLine(entry).startsWith(THERAPIST.name), `access log line ${accessLine(entry)}`);
}

const { data: exported, response: exportAnswer } = await expect(patient.GET("/v1/me/export", { params: { query: { format: "json" } } }), 200, "export");
if (!("account" in exported)) fail("export: format=json answered something else than the JSON export");
same([exported.format, exported.account.id], ["kap-journal-export/1", account.id], "export");
same([ids(exported.sessions), ids(exported.intentions), ids(exported.reflections)], [[session.id], [intention.id], [reflection.id]], "export entries");
sameSet(ids(exported.checkins), [morning.id, backfilled.id], "export check-ins");
sameSet(ids(exported.assessments), [phq9.id, gad7.id], "export assessments");
same(exported.safety_flags.map((f) => [f.id, f.state]), [[flag.id, "acknowledged"]], "export safety flags");
same(ids(exported.grants), [grant.id], "export grants");
same(exported.access_log.length, log.items.length, "export access log");
// One sign-in (the password grant) and its two refresh tokens: the first used up by the refresh.
const login = only(exported.sign_ins, "export sign-ins");
const loginEnded: string | null = login.ended_at;
same([login.client, loginEnded, login.refreshes.map((refresh) => refresh.used_at !== null)], ["app", null, [true, false]], "export sign-in");
same(exported.deletions.map((d) => [d.id, deletedLabel(d)]), [[evening.id, "you deleted a mood check-in"]], "export deletions");
check(exported.stored_answers.some((answer) => answer.idempotency_key === morningKey), "export keeps the check-in's stored answer");
check(
  sentHeader<operations["export_me"], 200>(exportAnswer, "Content-Disposition").startsWith("attachment;"),
  "export Content-Disposition",
);

console.log(`patient day and therapist read: ok (patient ${account.id}, grant ${grant.id})`);
