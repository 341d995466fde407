// nomira-opencode-plugin: installed by `nomira hooks install --agent opencode` into
// ~/.config/opencode/plugins/nomira.ts. It forwards USAGE ONLY (ids, model, provider, token
// counts, times, the project folder's name) of finished assistant messages to a Nomira collector's
// POST /v1/opencode/events. Never message text, tool inputs, file contents or paths.
// The collector converts them exactly like OpenCode's own storage (one call per step-finish part,
// keyed by message id + step id), so plugin, `nomira opencode watch` and `nomira ship` dedupe.
import type { Plugin } from "@opencode-ai/plugin"

const URL = "__NOMIRA_URL__"
const TOKEN = "__NOMIRA_TOKEN__"
const DEVELOPER = "__NOMIRA_DEVELOPER__"

type Tokens = { input?: number; output?: number; reasoning?: number; cache?: { read?: number; write?: number } }

function tokens(t: any): Tokens | undefined {
  if (!t || typeof t !== "object") return undefined
  const n = (v: any) => (typeof v === "number" && v > 0 ? Math.floor(v) : 0)
  return { input: n(t.input), output: n(t.output), reasoning: n(t.reasoning),
           cache: { read: n(t.cache?.read), write: n(t.cache?.write) } }
}

export const NomiraUsage: Plugin = async ({ directory }) => {
  const project = String(directory || "").split(/[\\/]/).filter(Boolean).pop() || ""
  const steps = new Map<string, any[]>() // message id -> usage of its step-finish parts
  const sent = new Set<string>()

  async function post(events: any[]) {
    try {
      await fetch(URL.replace(/\/+$/, "") + "/v1/opencode/events", {
        method: "POST",
        headers: { "Content-Type": "application/json", ...(TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {}) },
        body: JSON.stringify({ developer: DEVELOPER, events }),
        signal: AbortSignal.timeout(5000),
      })
    } catch {
      // the collector is down: `nomira ship` / `nomira opencode watch` pick these calls up later
    }
  }

  return {
    event: async ({ event }: { event: any }) => {
      const p = event?.properties ?? {}
      if (event?.type === "message.part.updated" && p.part?.type === "step-finish") {
        const part = p.part
        const list = steps.get(part.messageID) ?? []
        if (!list.some((s) => s.id === part.id)) list.push({ id: part.id, type: "step-finish",
          messageID: part.messageID, sessionID: part.sessionID, tokens: tokens(part.tokens) })
        steps.set(part.messageID, list)
        return
      }
      if (event?.type !== "message.updated") return
      const m = p.info
      if (!m || m.role !== "assistant" || !m.time?.completed) return
      const parts = steps.get(m.id) ?? []
      const key = `${m.id}:${parts.length}:${JSON.stringify(m.tokens ?? {})}`
      if (sent.has(key)) return // message.updated fires many times per message
      sent.add(key)
      if (steps.size > 2048) steps.delete(steps.keys().next().value) // bounded: oldest message first
      if (sent.size > 8192) sent.delete(sent.values().next().value)
      const info = { id: m.id, sessionID: m.sessionID, role: "assistant", modelID: m.modelID,
                     providerID: m.providerID, time: { created: m.time.created, completed: m.time.completed },
                     tokens: tokens(m.tokens), path: { cwd: project } }
      await post([...parts.map((part) => ({ type: "message.part.updated", properties: { part } })),
                  { type: "message.updated", properties: { info } }])
    },
  }
}
