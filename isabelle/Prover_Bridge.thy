(*  The Isabelle side of the prover's bridge (prover/backends/isabelle/).

    A table of proof states lives in this ML process: the client opens a theorem once, and every
    later step is one transition applied to a stored state, so a step costs one step whatever the
    depth of the proof. Each command below is a theory-level command that the client writes, alone,
    into a small theory and checks with the server's use_theories:

      prover_open NONCE ID MS "HEX"     forget all states; run the statement HEX (a theorem/lemma)
                                        in the current theory; store its proof state as ID
      prover_steps NONCE PARENT MS (ID "HEX")+
                                        vet each step HEX, run it on state PARENT within MS
                                        milliseconds (in parallel), close a finished block with
                                        done/qed, store the result as ID
      prover_sledgehammer NONCE PARENT S
                                        run "sledgehammer [timeout = S]" on state PARENT
      prover_vet NONCE "HEX"            vet a whole proof text in the current theory
      prover_audit NONCE "NAME"         the oracles behind the stored theorem NAME

    Texts travel hex-encoded: nothing in them can end the argument early or be read by the outer
    syntax of the theory that carries the command. Every command prints one writeln message: a
    JSON object on one line with "bridge": NONCE (format: prover/backends/isabelle/bridge.py).

    Vetting: a step is tokenized with the keywords of the state's own theory. It must consist of
    proof commands from proof_commands only; every proof method (read with Method.parse, combinators
    included) and every attribute must resolve, in the state's context, to a name whose base name
    is on proof_methods / attributes; no comment, no control cartouche, no malformed token. Nothing
    of a refused step runs. The three lists are the ones in prover/backends/isabelle/text.py.

    Written against the Isabelle2025 ML interfaces; compiled only where Isabelle is installed (see
    docs/isabelle.md for what was checked where).
*)
theory Prover_Bridge
  imports Pure
  keywords "prover_open" "prover_steps" "prover_sledgehammer" "prover_vet" "prover_audit" :: thy_decl
begin

ML \<open>
structure Prover_Bridge =
struct

(** allow-lists (same as PROOF_COMMANDS, PROOF_METHODS, ATTRIBUTES in text.py) **)

val proof_commands =
  ["apply", "apply_end", "by", "done", "using", "unfolding", "with", "from", "then", "hence",
   "thus", "have", "show", "obtain", "consider", "fix", "assume", "presume", "let", "note",
   "moreover", "ultimately", "also", "finally", "proof", "qed", "next", "case", "subgoal",
   "defer", "prefer", "define", "supply", "including", "{", "}", ".", ".."];

val proof_methods =
  ["-", "auto", "simp", "simp_all", "force", "fastforce", "fast", "blast", "best", "bestsimp",
   "slow", "slowsimp", "clarify", "clarsimp", "safe", "iprover", "metis", "meson", "smt", "argo",
   "linarith", "arith", "presburger", "algebra", "sos", "approximation", "eval", "code_simp",
   "order", "rule", "erule", "drule", "frule", "intro", "elim", "rule_tac", "erule_tac",
   "drule_tac", "frule_tac", "cut_tac", "subgoal_tac", "thin_tac", "rename_tac", "rotate_tac",
   "case_tac", "induct_tac", "ind_cases", "subst", "hypsubst", "hypsubst_thin", "induct",
   "induction", "coinduction", "cases", "goal_cases", "insert", "unfold", "fold", "unfold_locales",
   "intro_locales", "intro_classes", "standard", "this", "fact", "assumption", "contradiction",
   "split", "atomize", "transfer", "succeed", "fail"];

val attributes =
  ["of", "OF", "THEN", "where", "symmetric", "simplified", "unfolded", "folded", "rule_format",
   "elim_format", "rotated", "consumes", "case_names", "case_conclusion", "params", "simp",
   "intro", "elim", "dest", "iff", "rule", "split", "cong", "trans", "sym", "arith",
   "field_simps", "algebra_simps", "divide_simps", "ac_simps", "abs_def", "standard", "no_vars",
   "transferred", "untransferred", "induct", "cases", "atomize", "rulify"];

val method_commands = ["apply", "apply_end", "by", "proof", "qed"];
val statement_commands = ["theorem", "lemma", "corollary", "proposition"];


(** JSON output **)

fun json_char c =
  let val n = Char.ord c in
    if n = 34 then "\\\""
    else if n = 92 then "\\\\"
    else if n < 32 orelse n = 127 then "\\u" ^ StringCvt.padLeft #"0" 4 (Int.fmt StringCvt.HEX n)
    else String.str c
  end;

fun json_string s = "\"" ^ String.translate json_char s ^ "\"";
fun json_bool b = if b then "true" else "false";
fun json_list xs = "[" ^ space_implode "," xs ^ "]";
fun field (key: string) (value: string) = json_string key ^ ":" ^ value;
fun json_object fields = "{" ^ space_implode "," fields ^ "}";
fun json_seconds r = Real.fmt (StringCvt.FIX (SOME 3)) (if r < 0.0 then 0.0 else r);

fun report nonce kind fields =
  writeln (json_object (field "bridge" (json_string nonce) :: field "op" (json_string kind) :: fields));


(** hex-encoded texts **)

fun hex_value c =
  let val n = Char.ord c in
    if 48 <= n andalso n <= 57 then n - 48
    else if 97 <= n andalso n <= 102 then n - 87
    else error "bad hex digit"
  end;

fun decode_hex s =
  let
    fun dec (a :: b :: rest) = Char.chr (16 * hex_value a + hex_value b) :: dec rest
      | dec [] = []
      | dec _ = error "odd number of hex digits";
  in String.implode (dec (String.explode s)) end;


(** the state table **)

val states = Synchronized.var "Prover_Bridge.states" (Inttab.empty: Toplevel.state Inttab.table);

fun lookup_state id = Inttab.lookup (Synchronized.value states) id;
fun store_states entries = Synchronized.change states (fold Inttab.update entries);
fun reset_states () = Synchronized.change states (K Inttab.empty);


(** vetting **)

fun is_keyword x tok = Token.is_kind Token.Keyword tok andalso Token.content_of tok = x;

fun bad_token tok =
  Token.is_error tok orelse
  (not (Token.is_proper tok) andalso not (Token.is_space tok)) orelse
  (case Token.kind_of tok of Token.Control _ => true | _ => false);

(*command spans: a span starts at each command token*)
fun spans toks =
  let
    fun add tok (cur, acc) =
      if Token.is_command tok then ([tok], if null cur then acc else rev cur :: acc)
      else (tok :: cur, acc);
    val (cur, acc) = fold add toks ([], []);
  in rev (if null cur then acc else rev cur :: acc) end;

fun method_sources (Method.Source src) = [src]
  | method_sources (Method.Combinator (_, _, texts)) = maps method_sources texts
  | method_sources (Method.Basic _) = [];

fun check_method ctxt src =
  let
    val (written, _) = Token.name_of_src src;
    val full =
      (#1 (Token.name_of_src (Method.check_src ctxt src)))
        handle ERROR _ => error ("undefined proof method: " ^ written);
  in
    if member (op =) proof_methods (Long_Name.base_name full) then ()
    else error ("proof method not allowed in a step: " ^ written)
  end;

fun check_span_methods ctxt (cmd :: args) =
      if member (op =) method_commands (Token.content_of cmd) then
        (case try (Scan.read Token.stopper (Scan.repeat Method.parse)) args of
          SOME (SOME texts) => List.app (check_method ctxt) (maps (method_sources o #1) texts)
        | _ => error ("cannot read the proof methods of " ^ quote (Token.content_of cmd)))
      else ()
  | check_span_methods _ [] = ();

(*attribute names: the token after "[" and after "," directly inside the brackets; "[2]" selects goals*)
fun attribute_tokens toks =
  let
    fun go _ _ [] acc = rev acc
      | go stack expect (tok :: rest) acc =
          if is_keyword "[" tok then go ("[" :: stack) true rest acc
          else if expect then
            if Token.is_kind Token.Nat tok then go (case stack of _ :: s => "#" :: s | [] => []) false rest acc
            else go stack false rest (tok :: acc)
          else if is_keyword "(" tok then go ("(" :: stack) false rest acc
          else if is_keyword ")" tok orelse is_keyword "]" tok then
            go (case stack of _ :: s => s | [] => []) false rest acc
          else if is_keyword "," tok andalso (case stack of "[" :: _ => true | _ => false) then
            go stack true rest acc
          else go stack false rest acc;
  in go [] false toks [] end;

fun check_attribute ctxt tok =
  let
    val written = Token.content_of tok;
    val name_like =
      Token.is_kind Token.Ident tok orelse Token.is_kind Token.Long_Ident tok orelse
      Token.is_kind Token.Sym_Ident tok orelse Token.is_kind Token.String tok orelse
      (*"where" is a keyword of Pure*)
      Token.is_kind Token.Keyword tok andalso Symbol.is_ascii_identifier written;
    val _ = if name_like then () else error ("not an attribute name: " ^ quote written);
    val full =
      Attrib.check_name ctxt (written, Token.pos_of tok)
        handle ERROR _ => error ("undefined attribute: " ^ written);
  in
    if member (op =) attributes (Long_Name.base_name full) then ()
    else error ("attribute not allowed in a step: " ^ written)
  end;

(*NONE: the text may run; SOME reason: nothing of it runs*)
fun vet ctxt text =
  let
    val keywords = Thy_Header.get_keywords (Proof_Context.theory_of ctxt);
    val toks = Token.explode keywords Position.none text;
    val proper = filter Token.is_proper toks;
  in
    if exists bad_token toks then
      SOME "comments, control cartouches and malformed text are not allowed in a step"
    else if null proper then SOME "empty step"
    else if not (Token.is_command (hd proper)) then
      SOME ("a step starts with a proof command, not " ^ quote (Token.content_of (hd proper)))
    else
      (case find_first (fn span => not (member (op =) proof_commands (Token.content_of (hd span))))
          (spans proper) of
        SOME span => SOME ("command not allowed in a step: " ^ Token.content_of (hd span))
      | NONE =>
          (List.app (check_span_methods ctxt) (spans proper);
           List.app (check_attribute ctxt) (attribute_tokens proper);
           NONE)
          handle ERROR msg => SOME msg)
  end
  handle exn => if Exn.is_interrupt exn then Exn.reraise exn else SOME (Runtime.exn_message exn);


(** running text on a state **)

(*pos: the bridge command's own position, so that every message of the step is attributed to the
  bridge command (the server reports it at that command's line)*)
fun run_text pos st text =
  let
    val thy = Toplevel.theory_of st;
    val trs = Outer_Syntax.parse_text thy (K thy) Position.none text |> map (Toplevel.position pos);
  in fold (Toplevel.command_exception true) trs st end;

fun goal_count st =
  (case try Toplevel.proof_of st of
    SOME prf => Option.map (Thm.nprems_of o #goal) (try Proof.raw_goal prf)
  | NONE => NONE);

(*"done" after an apply-style step that left no subgoals, "qed" after a block whose goal is solved*)
fun closer st =
  (case (try Toplevel.proof_of st, goal_count st) of
    (SOME prf, SOME 0) =>
      if can Proof.assert_backward prf then SOME "done"
      else if can Proof.assert_forward prf then SOME "qed"
      else NONE
  | _ => NONE);

fun close_blocks pos st0 =
  let
    fun loop 0 st acc = (st, rev acc)
      | loop n st acc =
          (case closer st of
            NONE => (st, rev acc)
          | SOME c =>
              (case try (run_text pos st) c of
                SOME st' => loop (n - 1) st' (c :: acc)
              | NONE => (st, rev acc)));
  in loop 4 st0 [] end;

fun goals_text st =
  Pretty.chunks (Toplevel.pretty_state st) |> Pretty.string_of |> YXML.content_of;

type result =
  {id: int, status: string, state: Toplevel.state option, closers: string list, message: string,
    seconds: real};

fun elapsed start = Time.toReal (Time.- (Time.now (), start));

fun apply_step pos timeout parent (id, hex) : result =
  let
    val start = Time.now ();
    fun result status state closers message =
      {id = id, status = status, state = state, closers = closers, message = message,
        seconds = elapsed start};
    fun run text =
      let
        val (st, closers) = Timeout.apply timeout (fn () => close_blocks pos (run_text pos parent text)) ();
      in result (if Toplevel.is_proof st then "next" else "finished") (SOME st) closers "" end;
  in
    (case vet (Toplevel.context_of parent) (decode_hex hex) of
      SOME why => result "refused" NONE [] why
    | NONE => run (decode_hex hex))
    handle Timeout.TIMEOUT _ => result "timeout" NONE [] ""
      | exn =>
          if Exn.is_interrupt exn then Exn.reraise exn
          else result "failed" NONE [] (Runtime.exn_message exn)
  end;

fun result_json ({id, status, state, closers, message, seconds}: result) =
  json_object
   [field "id" (string_of_int id),
    field "status" (json_string status),
    field "goals"
      (json_string (case state of SOME st => if Toplevel.is_proof st then goals_text st else "" | NONE => "")),
    field "closers" (json_list (map json_string closers)),
    field "message" (json_string message),
    field "seconds" (json_seconds seconds)];

fun store_results (results: result list) =
  store_states (map_filter (fn {id, state, ...} => Option.map (pair id) state) results);

fun millis ms = Time.fromMilliseconds (Int.toLarge ms);


(** commands **)

fun open_statement nonce id ms hex st =
  let
    val _ = reset_states ();
    val pos = Position.thread_data ();
    val start = Time.now ();
    fun result status state message =
      {id = id, status = status, state = state, closers = [], message = message,
        seconds = elapsed start};
    val r =
      (let
        val text = decode_hex hex;
        val thy = Toplevel.theory_of st;
        val trs =
          Outer_Syntax.parse_text thy (K thy) Position.none text
          |> filter_out Toplevel.is_ignored
          |> map (Toplevel.position pos);
        val _ =
          (case trs of
            [tr] =>
              if member (op =) statement_commands (Toplevel.name_of tr) then ()
              else error ("not a theorem statement: " ^ quote (Toplevel.name_of tr))
          | _ => error "exactly one theorem statement expected");
        val st' = Timeout.apply (millis ms) (fn () => fold (Toplevel.command_exception true) trs st) ();
      in
        if Toplevel.is_proof st' then result "next" (SOME st') ""
        else result "failed" NONE "the statement did not start a proof"
      end)
      handle Timeout.TIMEOUT _ => result "timeout" NONE ""
        | exn =>
            if Exn.is_interrupt exn then Exn.reraise exn
            else result "failed" NONE (Runtime.exn_message exn);
    val _ = store_results [r];
  in report nonce "open" [field "results" (json_list [result_json r])] end;

fun run_steps nonce parent ms steps =
  let
    val pos = Position.thread_data ();
    val results =
      (case lookup_state parent of
        NONE =>
          map (fn (id, _) =>
            {id = id, status = "failed", state = NONE, closers = [],
              message = "unknown state " ^ string_of_int parent, seconds = 0.0}) steps
      | SOME st => Par_List.map (apply_step pos (millis ms) st) steps);
    val _ = store_results results;
  in report nonce "steps" [field "results" (json_list (map result_json results))] end;

fun run_sledgehammer nonce parent secs =
  let
    val pos = Position.thread_data ();
    val text = "sledgehammer [timeout = " ^ string_of_int secs ^ "]";
    val (status, message) =
      (case lookup_state parent of
        NONE => ("failed", "unknown state " ^ string_of_int parent)
      | SOME st =>
          (Timeout.apply (Time.fromSeconds (Int.toLarge (secs + 30))) (fn () => run_text pos st text) ();
            ("done", ""))
          handle Timeout.TIMEOUT _ => ("timeout", "")
            | exn =>
                if Exn.is_interrupt exn then Exn.reraise exn
                else ("failed", Runtime.exn_message exn));
  in report nonce "sledgehammer" [field "status" (json_string status), field "message" (json_string message)] end;

fun vet_text nonce hex st =
  let
    val verdict =
      (vet (Toplevel.context_of st) (decode_hex hex))
        handle ERROR msg => SOME msg;
    val status = (case verdict of NONE => "accepted" | SOME _ => "refused");
  in
    report nonce "vet"
      [field "status" (json_string status), field "message" (json_string (the_default "" verdict))]
  end;

fun audit nonce name st =
  let
    val ctxt = Toplevel.context_of st;
    val fields =
      (case try (Proof_Context.get_thms ctxt) name of
        NONE => [field "stored" (json_bool false), field "skip_proof" (json_bool false), field "oracles" "[]"]
      | SOME thms =>
          let val oracles = distinct (op =) (map (fn ((a, _), _) => a) (Thm_Deps.all_oracles thms)) in
            [field "stored" (json_bool true),
             field "skip_proof" (json_bool (Thm_Deps.has_skip_proof thms)),
             field "oracles" (json_list (map json_string oracles))]
          end);
  in report nonce "audit" (field "name" (json_string name) :: fields) end;

val _ =
  Outer_Syntax.command \<^command_keyword>\<open>prover_open\<close>
    "prover bridge: open a theorem, forgetting all stored states"
    (Parse.name -- Parse.nat -- Parse.nat -- Parse.string >> (fn (((nonce, id), ms), hex) =>
      Toplevel.keep (fn st => open_statement nonce id ms hex st)));

val _ =
  Outer_Syntax.command \<^command_keyword>\<open>prover_steps\<close>
    "prover bridge: vet and apply proof steps to a stored state"
    (Parse.name -- Parse.nat -- Parse.nat -- Scan.repeat1 (Parse.nat -- Parse.string) >>
      (fn (((nonce, parent), ms), steps) => Toplevel.keep (fn _ => run_steps nonce parent ms steps)));

val _ =
  Outer_Syntax.command \<^command_keyword>\<open>prover_sledgehammer\<close>
    "prover bridge: run Sledgehammer on a stored state"
    (Parse.name -- Parse.nat -- Parse.nat >> (fn ((nonce, parent), secs) =>
      Toplevel.keep (fn _ => run_sledgehammer nonce parent secs)));

val _ =
  Outer_Syntax.command \<^command_keyword>\<open>prover_vet\<close>
    "prover bridge: vet a proof text without running it"
    (Parse.name -- Parse.string >> (fn (nonce, hex) => Toplevel.keep (fn st => vet_text nonce hex st)));

val _ =
  Outer_Syntax.command \<^command_keyword>\<open>prover_audit\<close>
    "prover bridge: oracles and skipped proofs behind a stored theorem"
    (Parse.name -- Parse.name >> (fn (nonce, name) => Toplevel.keep (fn st => audit nonce name st)));

end;
\<close>

end
