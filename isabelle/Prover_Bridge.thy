(*  The Isabelle side of the prover's bridge (prover/backends/isabelle.py).

    The Isabelle server reports what a theory printed, not the proof states in between. These two
    diagnostic commands print what the bridge needs as one writeln message each, headed by a tag the
    bridge chooses (a random word, so proof steps written by a model cannot forge the output):

      prover_goals TAG       "TAG proof" and the proof state as Isabelle prints it, on the next lines,
                             or "TAG theory" when no proof is open (the theorem is proved).
      prover_audit TAG NAME  "TAG audit NAME skip_proof=true|false oracles=N", then Isabelle's listing
                             of the oracles the stored theorem NAME depends on (thm_oracles).

    Both only read the state; neither changes the theory or the proof.
*)
theory Prover_Bridge
  imports Pure
  keywords "prover_goals" "prover_audit" :: diag
begin

ML \<open>
local

fun goals_report tag st =
  if Toplevel.is_proof st
  then tag ^ " proof\n" ^ Toplevel.string_of_state st
  else tag ^ " theory";

fun audit_report tag name ctxt =
  let
    val thms = Proof_Context.get_thms ctxt name;
    val oracles = Thm_Deps.all_oracles thms;
    val listing = Pretty.string_of (Thm_Deps.pretty_thm_oracles ctxt thms);
    val head =
      space_implode " "
        [tag, "audit", name,
         "skip_proof=" ^ Bool.toString (Thm_Deps.has_skip_proof thms),
         "oracles=" ^ string_of_int (length oracles)];
  in head ^ "\n" ^ listing end;

in

val _ =
  Outer_Syntax.command \<^command_keyword>\<open>prover_goals\<close>
    "print the proof state for the prover bridge"
    (Parse.name >> (fn tag => Toplevel.keep (fn st => writeln (goals_report tag st))));

val _ =
  Outer_Syntax.command \<^command_keyword>\<open>prover_audit\<close>
    "print the oracles a stored theorem depends on, for the prover bridge"
    (Parse.name -- Parse.name >> (fn (tag, name) =>
      Toplevel.keep (fn st => writeln (audit_report tag name (Toplevel.context_of st)))));

end
\<close>

end
