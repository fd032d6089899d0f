/-
`prover_suggest`: tactic suggestions from `prover` in the Lean editor, llmstep-style.

  example (a b : Nat) (h : a ≤ b) : a < b + 1 := by
    prover_suggest        -- or `prover_suggest 16` for 16 candidates (default 8)

The tactic pretty-prints the main goal, asks `prover client` for ranked candidates (one `suggest`
request with the goal as text, see docs/repl.md), runs every candidate on the goal here in Lean,
rolls each run back, and shows the ones that work as "Try this:" actions (those that close the goal
first). Clicking one replaces `prover_suggest` with it. The goal itself is left unchanged.

Setup: `prover` on PATH (or `PROVER_CMD=/path/to/prover`); `lean_project/lakefile.toml` declares
this file as the library `ProverSuggest` and `make lean` builds it, so `import ProverSuggest` works
in the project (copy the file and the `[[lean_lib]]` entry into another Lake project to use it there).
Environment variables read when the tactic runs:
  PROVER_CMD        the prover executable (default `prover`)
  PROVER_BACKEND    the backend whose generator/prompt to use (default `lean-repl`)
  PROVER_GENERATOR  the generator (default: the server's, e.g. `prover repl --generator hf --model ...`)
  PROVER_REPL_PORT  use a running `prover repl --port N` (keeps the model loaded between calls)
                    rather than starting one for each call.
Untested here: no Lean toolchain on the machine that wrote it.
-/
import Lean

open Lean Elab Tactic Meta

namespace ProverSuggest

/-- Words a suggestion must not contain: they would "prove" the goal without a proof. -/
def forbidden : List String := ["sorry", "admit", "native_decide", "sorryAx", "dbg_trace", "dbgTrace",
  "exact?", "apply?", "rw?", "native := true", "+native"]

def isForbidden (tac : String) : Bool :=
  forbidden.any fun w => (tac.splitOn w).length > 1

/-- The `suggest` request line (docs/repl.md): the goal as text, no check on the server side. -/
def request (goal : String) (n : Nat) (backend : String) (generator : Option String) : Json :=
  let base : List (String × Json) :=
    [("id", Json.str "lean"), ("cmd", Json.str "suggest"), ("backend", Json.str backend),
     ("goal", Json.str goal), ("n", toJson n)]
  Json.mkObj (base ++ (match generator with
    | some g => [("generator", Json.str g)]
    | none => []))

/-- Ask `prover client` for ranked tactics for `goal`, best first. -/
def askProver (goal : String) (n : Nat) : IO (Array String) := do
  let cmd := (← IO.getEnv "PROVER_CMD").getD "prover"
  let backend := (← IO.getEnv "PROVER_BACKEND").getD "lean-repl"
  let generator ← IO.getEnv "PROVER_GENERATOR"
  let line := (request goal n backend generator).compress
  let out ← IO.Process.output { cmd := cmd, args := #["client", "--no-progress", line] }
  if out.exitCode != 0 then
    throw <| IO.userError s!"prover client failed ({out.exitCode}): {out.stdout} {out.stderr}"
  let mut tactics : Array String := #[]
  for raw in out.stdout.splitOn "\n" do
    if raw.trim.isEmpty then continue
    let json ← IO.ofExcept (Json.parse raw)
    match json.getObjValAs? String "type" with
    | .ok "suggestions" =>
      let candidates ← IO.ofExcept (json.getObjValAs? (Array Json) "candidates")
      for c in candidates do
        if let .ok t := c.getObjValAs? String "tactic" then
          tactics := tactics.push t
    | _ => pure ()
  return tactics

/-- Run `tac` on `goal` and roll everything back: `some k` when it works and leaves `k` goals. -/
def tryTactic (goal : MVarId) (tac : String) : TacticM (Option Nat) := do
  let .ok stx := Parser.runParserCategory (← getEnv) `tactic tac | return none
  let saved ← saveState
  try
    -- Start from an empty message log, so an error a tactic logs (rather than throws) shows.
    modifyThe Core.State fun s => { s with messages := {} }
    setGoals [goal]
    withoutRecover <| evalTactic stx
    let failed := (← getThe Core.State).messages.hasErrors
    let left := (← getUnsolvedGoals).length
    saved.restore
    return if failed then none else some left
  catch _ =>
    saved.restore
    return none

syntax (name := proverSuggest) "prover_suggest" (ppSpace num)? : tactic

elab_rules : tactic
  | `(tactic| prover_suggest%$tk $[$n]?) => do
    let goal ← getMainGoal
    let text := toString (← goal.withContext (ppGoal goal))
    let proposed ← askProver text (n.map (·.getNat) |>.getD 8)
    let mut closing : Array Lean.Meta.Tactic.TryThis.Suggestion := #[]
    let mut others : Array Lean.Meta.Tactic.TryThis.Suggestion := #[]
    for tac in proposed do
      if isForbidden tac then continue
      match ← tryTactic goal tac with
      | some 0 => closing := closing.push { suggestion := .string tac, postInfo? := some "  -- closes the goal" }
      | some k => others := others.push { suggestion := .string tac, postInfo? := some s!"  -- {k} goal(s) left" }
      | none => pure ()
    if closing.isEmpty && others.isEmpty then
      logInfo m!"prover_suggest: none of the {proposed.size} suggestions works on this goal"
    else
      Lean.Meta.Tactic.TryThis.addSuggestions tk (closing ++ others) (header := "Try this:")

end ProverSuggest
