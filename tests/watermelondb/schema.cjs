// The WatermelonDB schema of the journal, as the README gives it to app developers: one table per
// resource, every column of GET /v1/sync/watermelondb (tests/test_watermelondb.py checks that it
// matches the server's columns).
const { appSchema, tableSchema } = require('@nozbe/watermelondb')

const common = [
  { name: 'private', type: 'boolean' },
  // Assigned by the server: sent on pull, ignored on push.
  { name: 'version', type: 'number' },
  { name: 'created_at', type: 'number' },
  { name: 'updated_at', type: 'number' },
  { name: 'clock_adjusted', type: 'boolean' },
]

const tables = {
  sessions: [
    { name: 'started_at', type: 'number' },
    { name: 'ended_at', type: 'number', isOptional: true },
    { name: 'route', type: 'string' },
    { name: 'dose_mg', type: 'number', isOptional: true },
    { name: 'setting', type: 'string' },
    { name: 'notes', type: 'string', isOptional: true },
  ],
  intentions: [
    { name: 'text', type: 'string' },
    { name: 'session_id', type: 'string', isOptional: true },
    { name: 'status', type: 'string' },
    { name: 'set_at', type: 'number' },
  ],
  reflections: [
    { name: 'text', type: 'string' },
    { name: 'session_id', type: 'string', isOptional: true },
    { name: 'prompts', type: 'string' }, // JSON text
    { name: 'emotions', type: 'string' }, // JSON text
    { name: 'intention_ids', type: 'string' }, // JSON text
    { name: 'written_at', type: 'number' },
  ],
  checkins: [
    { name: 'recorded_at', type: 'number' },
    { name: 'backfilled', type: 'boolean' },
    { name: 'mood', type: 'number' },
    { name: 'anxiety', type: 'number', isOptional: true },
    { name: 'energy', type: 'number', isOptional: true },
    { name: 'sleep_hours', type: 'number', isOptional: true },
    { name: 'note', type: 'string', isOptional: true },
    { name: 'received_at', type: 'number' },
  ],
  assessments: [
    { name: 'instrument', type: 'string' },
    { name: 'answers', type: 'string' }, // JSON text
    { name: 'completed_at', type: 'number' },
    { name: 'total', type: 'number' },
    { name: 'band', type: 'string' },
    { name: 'safety_flag', type: 'boolean' },
    { name: 'clusters', type: 'string', isOptional: true }, // JSON text
    { name: 'provisional_positive', type: 'boolean', isOptional: true },
    { name: 'provisional_diagnosis', type: 'boolean', isOptional: true }, // deprecated
    { name: 'meets_symptom_pattern', type: 'boolean', isOptional: true },
    { name: 'screening_result', type: 'string', isOptional: true },
    { name: 'raised_flag', type: 'string', isOptional: true }, // JSON text
    { name: 'crisis_resources', type: 'string' }, // JSON text
  ],
}

const schema = appSchema({
  version: 1,
  tables: Object.entries(tables).map(([name, columns]) =>
    tableSchema({ name, columns: [...common, ...columns] }),
  ),
})

// Columns the server assigns (never the phone's to set): left out when comparing phones.
const serverColumns = new Set([
  'version', 'created_at', 'updated_at', 'clock_adjusted', 'backfilled', 'received_at',
  'total', 'band', 'safety_flag', 'clusters', 'provisional_positive', 'provisional_diagnosis',
  'crisis_resources',
])

module.exports = { schema, tables: Object.fromEntries(Object.entries(tables).map(([n, c]) => [n, [...common, ...c]])), serverColumns }
