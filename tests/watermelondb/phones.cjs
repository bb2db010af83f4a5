// Two phones of one patient, each a WatermelonDB database (LokiJS adapter, in memory), syncing
// with a real server through glue.cjs. Run by tests/test_watermelondb.py with BASE_URL set; each
// situation of issue 14 gets a fresh patient. Exits non-zero on the first failed check; prints
// one JSON line per situation (the conflicts each phone reported, and the entries they hold).
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { Database, Model } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { setGenerator } = require('@nozbe/watermelondb/utils/common/randomId')
const { logger } = require('@nozbe/watermelondb/utils/common')
const { schema, tables, serverColumns } = require('./schema.cjs')
const { sync } = require('./glue.cjs')

setGenerator(() => crypto.randomUUID()) // the server's ids are UUIDs
logger.silence() // WatermelonDB notes, among others, its own creates coming back in the next pull
const BASE = process.env.BASE_URL
const DAY = 24 * 3600 * 1000

const modelClasses = Object.keys(tables).map((table) => class extends Model { static table = table })

async function account() {
  const email = `phone-${crypto.randomUUID()}@example.org`
  const password = 'a long enough passphrase'
  let r = await fetch(`${BASE}/v1/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password, display_name: 'Phone test', role: 'patient' }) })
  assert.equal(r.status, 201, await r.text())
  r = await fetch(`${BASE}/v1/auth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'password', username: email, password }) })
  const { access_token: token } = await r.json()
  return async (method, path, body, { loseAnswer = false } = {}) => {
    const response = await fetch(`${BASE}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) })
    const text = await response.text()
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`)
    if (loseAnswer) throw new Error('the answer was lost on the way')
    return JSON.parse(text)
  }
}

let phoneCount = 0
function phone(api) {
  const database = new Database({ adapter: new LokiJSAdapter({ schema, useWebWorker: false, useIncrementalIndexedDB: false, dbName: `phone${phoneCount++}` }), modelClasses })
  const conflicts = []
  const pushed = new Map()
  const self = {
    database, conflicts, pushed, lose: false,
    sync: () => sync(database, (m, p, b) => api(m, p, b, { loseAnswer: self.lose && m === 'POST' }), conflicts, pushed),
    async create(table, values) {
      let record
      await database.write(async () => { record = await database.get(table).create((r) => Object.entries(values).forEach(([k, v]) => r._setRaw(k, v))) })
      return record.id
    },
    async edit(table, id, values) {
      await database.write(async () => { const r = await database.get(table).find(id); await r.update(() => Object.entries(values).forEach(([k, v]) => r._setRaw(k, v))) })
    },
    async remove(table, id) {
      await database.write(async () => { await (await database.get(table).find(id)).markAsDeleted() })
    },
    async get(table, id) { return (await database.get(table).find(id))._raw },
    async entries() {
      const all = {}
      for (const table of Object.keys(tables)) {
        for (const record of await database.get(table).query().fetch()) {
          all[`${table}/${record.id}`] = Object.fromEntries(Object.entries(record._raw).filter(([k]) => !k.startsWith('_') && !serverColumns.has(k)))
        }
      }
      return all
    },
  }
  return self
}

async function serverEntries(api) {
  const { changes } = await api('GET', '/v1/sync/watermelondb')
  const all = {}
  for (const [table, { created, updated, deleted }] of Object.entries(changes)) {
    assert.equal(deleted.length >= 0, true)
    const ids = [...created, ...updated].map((r) => r.id)
    assert.equal(new Set(ids).size, ids.length, 'an id twice in one pull')
    for (const raw of [...created, ...updated]) all[`${table}/${raw.id}`] = Object.fromEntries(Object.entries(raw).filter(([k]) => !serverColumns.has(k)))
  }
  return all
}

// Both phones and the server hold the same entries, and nothing is waiting on either phone.
async function converged(api, a, b) {
  await a.sync(); await b.sync(); await a.sync()
  const server = await serverEntries(api)
  assert.deepEqual(await a.entries(), server)
  assert.deepEqual(await b.entries(), server)
  return server
}

const checkin = (mood, at = Date.now()) => ({ mood, recorded_at: at, private: false })

const situations = {
  async 'create then delete offline'(api, a, b) {
    const gone = await a.create('checkins', checkin(2))
    const kept = await a.create('checkins', checkin(6))
    await a.remove('checkins', gone)
    await a.sync()
    const server = await converged(api, a, b)
    assert.deepEqual(Object.keys(server), [`checkins/${kept}`])
  },
  async 'lost push answer then edit'(api, a, b) {
    const id = await a.create('intentions', { text: 'Slow down', status: 'active', set_at: Date.now() })
    a.lose = true
    await assert.rejects(a.sync(), /answer was lost/)
    a.lose = false
    await a.edit('intentions', id, { text: 'Slow down, breathe' })
    await a.sync()
    const server = await converged(api, a, b)
    assert.equal(server[`intentions/${id}`].text, 'Slow down, breathe')
  },
  async 'a session deleted elsewhere'(api, a, b) {
    const session = await a.create('sessions', { started_at: Date.now() - DAY, route: 'im', setting: 'clinic' })
    await a.sync(); await b.sync()
    await a.remove('sessions', session); await a.sync()
    const intention = await b.create('intentions', { text: 'Rest', status: 'active', set_at: Date.now(), session_id: session })
    const other = await b.create('checkins', checkin(5))
    await b.sync()
    const server = await converged(api, a, b)
    assert.equal(server[`intentions/${intention}`].session_id, null)
    assert.ok(server[`checkins/${other}`])
    assert.ok(b.conflicts.some((c) => c.id === intention && c.notes.some((n) => n.includes('session_id cleared'))))
  },
  async 'one bad entry among good ones'(api, a, b) {
    const bad = await a.create('checkins', checkin(11))
    const good = await a.create('checkins', checkin(4))
    await a.sync() // does not throw: the bad one is rejected alone
    const rejected = a.conflicts.find((c) => c.id === bad)
    assert.equal(rejected.kind, 'rejected')
    assert.deepEqual(rejected.problem.errors.map((e) => e.loc.at(-1)), ['mood'])
    assert.equal((await a.get('checkins', bad))._status, 'created') // kept on the phone, to fix
    await a.edit('checkins', bad, { mood: 10 }) // the patient fixes it
    const server = await converged(api, a, b)
    assert.deepEqual(Object.keys(server).sort(), [`checkins/${bad}`, `checkins/${good}`].sort())
  },
  async 'a clock two days fast and two days slow'(api, a, b) {
    const fast = await a.create('checkins', checkin(5, Date.now() + 2 * DAY))
    const slow = await b.create('checkins', checkin(5, Date.now() - 2 * DAY))
    await a.sync(); await b.sync()
    await converged(api, a, b)
    const shown = await b.get('checkins', fast)
    assert.equal(shown.clock_adjusted, true)
    assert.equal(shown.recorded_at, shown.received_at)
    assert.equal((await a.get('checkins', slow)).backfilled, true)
    assert.ok(a.conflicts.some((c) => c.id === fast && c.notes.some((n) => n.startsWith('clock_adjusted'))))
  },
  async 'delete against edit, the delete first'(api, a, b) {
    const id = await a.create('checkins', checkin(3))
    await a.sync(); await b.sync()
    await a.remove('checkins', id); await b.edit('checkins', id, { mood: 8 })
    await a.sync(); await b.sync()
    const server = await converged(api, a, b)
    assert.equal(server[`checkins/${id}`], undefined)
    assert.ok(b.conflicts.some((c) => c.id === id && c.kind === 'deleted elsewhere, edit dropped'))
  },
  async 'delete against edit, the edit first'(api, a, b) {
    const id = await a.create('checkins', checkin(3))
    await a.sync(); await b.sync()
    await a.remove('checkins', id); await b.edit('checkins', id, { mood: 8 })
    await b.sync(); await a.sync()
    const server = await converged(api, a, b)
    assert.equal(server[`checkins/${id}`].mood, 8) // the later edit is kept
    assert.ok(a.conflicts.some((c) => c.id === id && c.kind === 'edited elsewhere, delete undone'))
  },
  async 'edit against edit'(api, a, b) {
    const id = await a.create('intentions', { text: 'Listen', status: 'active', set_at: Date.now() })
    await a.sync(); await b.sync()
    await a.edit('intentions', id, { status: 'revisited' })
    await b.edit('intentions', id, { status: 'archived', text: 'Listen closely' })
    await a.sync(); await b.sync()
    const server = await converged(api, a, b)
    assert.equal(server[`intentions/${id}`].status, 'archived')
    assert.equal(server[`intentions/${id}`].text, 'Listen closely')
    assert.ok(b.conflicts.some((c) => c.id === id && c.kind === 'edited on both' && c.columns.includes('status')))
  },
  async 'an edit between pull and push'(api, a, b) {
    const id = await a.create('checkins', checkin(3))
    await a.sync(); await b.sync()
    await b.edit('checkins', id, { mood: 4 })
    // Another phone's edit lands after b's pull and before its push.
    let raced = false
    await sync(b.database, async (m, p, body) => {
      if (m === 'POST' && !raced) {
        raced = true
        const other = { checkins: { created: [], updated: [{ id, mood: 9, _changed: 'mood' }], deleted: [] } }
        await api('POST', p, { last_pulled_at: 2 ** 40, changes: other })
      }
      return api(m, p, body)
    }, b.conflicts, b.pushed)
    const rejected = b.conflicts.find((c) => c.id === id)
    assert.equal(rejected.kind, 'conflict') // reported, and kept on the phone
    assert.equal(rejected.current.mood, 9)
    const server = await converged(api, a, b)
    assert.ok(b.conflicts.some((c) => c.id === id && c.kind === 'edited on both'))
    assert.equal(server[`checkins/${id}`].mood, 4) // b's change, made again after it pulled the edit
  },
  async 'many entries, in one consistent pull'(api, a, b) {
    await a.database.write(async () => {
      const checkins = a.database.get('checkins')
      await a.database.batch(...Array.from({ length: 600 }, (_, i) => checkins.prepareCreate((r) => { r._setRaw('mood', i % 11); r._setRaw('recorded_at', Date.now() - i * 60000) })))
    })
    await a.sync()
    const server = await converged(api, a, b)
    assert.equal(Object.keys(server).length, 600)
  },
  async 'a PHQ-9 answered offline brings its flag on the next pull'(api, a, b) {
    const id = await a.create('assessments', { instrument: 'phq9', answers: JSON.stringify([1, 1, 1, 1, 1, 1, 1, 1, 2]), completed_at: Date.now() })
    await a.sync(); await a.sync()
    const raw = await a.get('assessments', id)
    assert.equal(raw.safety_flag, true)
    assert.ok(JSON.parse(raw.crisis_resources).length > 0)
    await converged(api, a, b)
  },
}

async function main() {
  const only = process.argv[2]
  for (const [name, run] of Object.entries(situations)) {
    if (only && name !== only) continue
    const api = await account()
    const a = phone(api); const b = phone(api)
    await run(api, a, b)
    console.log(JSON.stringify({ situation: name, conflicts: [a.conflicts.length, b.conflicts.length] }))
  }
}

// LokiJS keeps timers of its own: leave when done.
main().then(() => process.exit(0), (error) => { console.error(error); process.exit(1) })
