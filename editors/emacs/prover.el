;;; prover.el --- Checked tactic suggestions from `prover repl' in Coq buffers  -*- lexical-binding: t; -*-

;; Usage (Proof General's coq-mode, or any Coq buffer; Emacs 27+ for native JSON):
;;
;;   (load "/path/to/prover/editors/emacs/prover.el")
;;   (with-eval-after-load 'coq-mode (define-key coq-mode-map (kbd "C-c C-SPC") #'prover-suggest))
;;
;; Put point where the next tactic goes, inside a proof, and run `M-x prover-suggest'.  The
;; buffer text up to point goes to a `prover repl' (started once, kept running) as a `suggest'
;; request with `source' and `check: true' (docs/repl.md): the server finds the theorem and the
;; proof so far, opens them in its own coqtop (not Proof General's), asks the generator for
;; tactics, and keeps those that run.  You pick one (shown with the goals it leaves, or "proof
;; complete"), and it is inserted at point.  The first request on a theorem opens it (seconds);
;; later ones reuse the open session (milliseconds).  C-g while waiting cancels the request.
;; Limits: the server's coqtop gets no -R/-Q flags from _CoqProject; bullets are ignored (the
;; tactics run on the goals in order).  `M-x prover-stop' ends the REPL.

;;; Code:

(require 'cl-lib)
(require 'seq)
(require 'subr-x)

(defgroup prover nil "Tactic suggestions from prover." :group 'tools)

(defcustom prover-command '("prover" "repl")
  "Command that starts the REPL.
For instance (\"prover\" \"repl\" \"--generator\" \"hf\" \"--model\" \"DIR\")."
  :type '(repeat string))

(defcustom prover-suggest-count 8 "Candidates asked of the generator." :type 'integer)

(defcustom prover-tactic-timeout 2 "Seconds each candidate may run." :type 'number)

(defcustom prover-response-timeout 180 "Seconds to wait for an answer." :type 'number)

(defvar prover--process nil "The running `prover repl'.")
(defvar prover--partial "" "Output received after the last complete line.")
(defvar prover--responses (make-hash-table :test #'equal) "Request id -> messages so far.")
(defvar prover--next-id 0)

(defun prover--filter (_process output)
  "Split OUTPUT into JSON lines and file each message under its request id."
  (let ((lines (split-string (concat prover--partial output) "\n")))
    (setq prover--partial (car (last lines)))
    (dolist (line (butlast lines))
      (unless (string-empty-p line)
        (let* ((message (json-parse-string line :object-type 'alist :array-type 'list
                                           :null-object nil :false-object nil))
               (id (alist-get 'id message)))
          (puthash id (append (gethash id prover--responses) (list message)) prover--responses))))))

(defun prover--process ()
  "The REPL process, started when needed."
  (unless (process-live-p prover--process)
    (setq prover--partial "")
    (clrhash prover--responses)
    (setq prover--process
          (make-process :name "prover-repl" :command prover-command :connection-type 'pipe
                        :noquery t :stderr (get-buffer-create "*prover-repl stderr*")
                        :filter #'prover--filter)))
  prover--process)

(defun prover--send (fields)
  "Send the request FIELDS (an alist without id); return its id."
  (let ((id (format "emacs-%d" (cl-incf prover--next-id))))
    (process-send-string (prover--process) (concat (json-serialize (cons (cons 'id id) fields)) "\n"))
    id))

(defun prover--request (fields)
  "Send FIELDS and wait for the final response; C-g cancels the request."
  (let* ((id (prover--send fields))
         (deadline (+ (float-time) prover-response-timeout))
         (final nil))
    (condition-case nil
        (while (not final)
          (when (> (float-time) deadline)
            (prover--send `((cmd . "cancel") (target . ,id)))
            (error "prover: no answer within %s s" prover-response-timeout))
          (accept-process-output prover--process 0.05)
          (setq final (seq-find (lambda (m) (not (equal (alist-get 'type m) "progress")))
                                (gethash id prover--responses))))
      (quit (prover--send `((cmd . "cancel") (target . ,id)))
            (signal 'quit nil)))
    (remhash id prover--responses)
    final))

(defun prover--label (candidate)
  "How CANDIDATE reads in the minibuffer: the tactic, then what it leaves."
  (let ((goals (alist-get 'goals candidate)))
    (format "%-30s %s" (alist-get 'tactic candidate)
            (if (alist-get 'complete candidate)
                "=> proof complete"
              (concat "=> " (string-join (seq-take (split-string (or goals "") "\n" t) 4) " | "))))))

;;;###autoload
(defun prover-suggest ()
  "Ask prover for tactics that work at point, and insert the one you choose."
  (interactive)
  (let* ((source (buffer-substring-no-properties (point-min) (point)))
         (reply (prover--request `((cmd . "suggest") (source . ,source) (check . t)
                                   ;; the buffer's _CoqProject (nearest at or above it) gives the flags
                                   (project . ,(expand-file-name (or buffer-file-name default-directory)))
                                   (n . ,prover-suggest-count)
                                   (tactic_timeout . ,prover-tactic-timeout))))
         (type (alist-get 'type reply)))
    (cond
     ((equal type "error") (user-error "prover: %s" (alist-get 'message reply)))
     ((not (equal type "suggestions")) (user-error "prover: %s" type))
     ((null (alist-get 'candidates reply))
      (message "prover: none of the %s candidates works here" (alist-get 'tried reply)))
     (t
      (let* ((choices (mapcar (lambda (c) (cons (prover--label c) c)) (alist-get 'candidates reply)))
             (tactic (alist-get 'tactic (cdr (assoc (completing-read "Tactic: " choices nil t) choices)))))
        (insert (if (string-suffix-p "." tactic) tactic (concat tactic "."))))))))

;;;###autoload
(defun prover-stop ()
  "Shut the REPL down (it stops its provers and exits)."
  (interactive)
  (when (process-live-p prover--process)
    (prover--request '((cmd . "shutdown")))
    (let ((deadline (+ (float-time) 10)))
      (while (and (process-live-p prover--process) (< (float-time) deadline))
        (accept-process-output prover--process 0.05)))))

(provide 'prover)
;;; prover.el ends here
