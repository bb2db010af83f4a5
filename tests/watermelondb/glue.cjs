// The glue between WatermelonDB's synchronize() and /v1/sync/watermelondb: what an app needs,
// plus a record of conflicts so the app can show them (README, "Building an offline app").
const { synchronize } = require('@nozbe/watermelondb/sync')

// `pushed`: the version each entry had after this phone's own last push (from the push's
// results), so the next pull can tell the phone's own changes from changes made elsewhere.
async function sync(database, api, conflicts, pushed = new Map()) {
  await synchronize({
    database,
    pullChanges: async ({ lastPulledAt }) => {
      const query = lastPulledAt ? `?last_pulled_at=${lastPulledAt}` : ''
      const { changes, timestamp } = await api('GET', `/v1/sync/watermelondb${query}`)
      for (const [table, { created, updated, deleted }] of Object.entries(changes)) {
        // Deleted on this phone since: an entry as this phone last pushed it (or as created)
        // stays deleted; one edited elsewhere after that comes back, as a delete never discards
        // an edit made after the version it saw.
        const locallyDeleted = new Set(await database.adapter.getDeletedRecords(table))
        const mine = (raw) => raw.version === 1 || pushed.get(raw.id) === raw.version
        const revived = updated.filter((raw) => locallyDeleted.has(raw.id) && !mine(raw))
        changes[table].created = created.filter((raw) => !locallyDeleted.has(raw.id))
        changes[table].updated = updated.filter((raw) => !locallyDeleted.has(raw.id))
        if (revived.length) {
          await database.adapter.destroyDeletedRecords(table, revived.map((raw) => raw.id))
          changes[table].created.push(...revived)
          revived.forEach((raw) => conflicts.push({ table, id: raw.id, kind: 'edited elsewhere, delete undone', current: raw }))
        }
        // Deleted elsewhere while this phone edited it: the delete came first, the edit goes.
        for (const id of deleted) {
          const local = await database.get(table).find(id).catch(() => null)
          if (local && local._raw._status === 'updated') conflicts.push({ table, id, kind: 'deleted elsewhere, edit dropped', current: null })
        }
      }
      return { changes, timestamp }
    },
    pushChanges: async ({ changes, lastPulledAt }) => {
      const answer = await api('POST', '/v1/sync/watermelondb', { changes, last_pulled_at: lastPulledAt })
      for (const [table, results] of Object.entries(answer.results)) {
        for (const r of results) {
          if (r.etag && (r.outcome === 'applied' || r.outcome === 'replayed')) pushed.set(r.id, Number(r.etag.replaceAll('"', '')))
          if (r.outcome === 'conflict' || r.outcome === 'rejected' || r.notes.length) conflicts.push({ table, id: r.id, kind: r.outcome, problem: r.problem, current: r.current, notes: r.notes })
        }
      }
      return { experimentalRejectedIds: answer.experimentalRejectedIds }
    },
    // WatermelonDB keeps the columns changed on the phone; a column changed on both is a
    // conflict decided for the phone, and reported.
    conflictResolver: (table, local, remote, resolved) => {
      if (pushed.get(local.id) === remote.version || local._status === 'created') return resolved // its own
      const both = local._changed.split(',').filter((c) => c && remote[c] !== undefined && remote[c] !== local[c])
      if (both.length) conflicts.push({ table, id: local.id, kind: 'edited on both', columns: both, current: remote })
      return resolved
    },
  })
}

module.exports = { sync }
