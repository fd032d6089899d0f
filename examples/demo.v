(* Theorems for `make demo`: each proof is missing and `prover prove` finds one.
   A proof can use the tactics of the libraries the file loads (here lia and lra). *)
Require Import Arith ZArith Reals Lia Lra.

Theorem add_zero_r : forall n : nat, n + 0 = n.
Admitted.

Open Scope Z_scope.
Theorem lt_succ_le : forall x y : Z, x < y -> x + 1 <= y.
Admitted.
Close Scope Z_scope.

Open Scope R_scope.
Theorem square_of_sum : forall a b : R, (a + b) ^ 2 = a ^ 2 + 2 * a * b + b ^ 2.
Admitted.
Close Scope R_scope.

Theorem and_swap : forall P Q : Prop, P /\ Q -> Q /\ P.
Admitted.

Theorem subst_then_lia : forall a b c : nat, a = b + c -> b = 2 -> c = 3 -> a * 1 = 5.
Admitted.
