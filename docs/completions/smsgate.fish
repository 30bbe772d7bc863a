# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_smsgate_global_optspecs
    string join \n h/help V/version
end

function __fish_smsgate_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_smsgate_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_smsgate_using_subcommand
    set -l cmd (__fish_smsgate_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c smsgate -n "__fish_smsgate_needs_command" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_needs_command" -s V -l version -d 'Print version'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "serve" -d 'Run the gateway with a configuration file'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "demo" -d 'Run the whole gateway with the built-in simulated modem: no hardware, no configuration'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "config" -d 'Check a configuration file'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "pdu" -d 'Encode a text into SMS-SUBMIT PDUs, or decode a PDU read off a modem'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "modem" -d 'Talk to a modem directly, without the daemon: find it, send a test message'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "history" -d 'Check or export the tamper-evident message history (on the store, daemon stopped)'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "store" -d 'Check, export, import or compact the whole store (daemon stopped), copy it between the embedded store and PostgreSQL, or migrate a PostgreSQL store\'s schema'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "simulate" -d 'Run the built-in modem simulator on a pseudo-terminal (for tests, demos and trying things out)'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "status" -d 'Show a running daemon\'s modems and queue; exit 1 when no modem is up'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "send" -d 'Send one SMS through a running daemon'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "messages" -d 'List, show, cancel or requeue a running daemon\'s messages'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "inbound" -d 'List the messages customers sent'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "reminders" -d 'Reminder plans: make one, show one, mark one paid'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "optout" -d 'Add, remove or list opted-out numbers'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "audit" -d 'List who did what: a running daemon\'s audit log (templates, opt-outs, reloads, USSD)'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "backup" -d 'Back up a running daemon\'s store into a file, for `smsgate store import`'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "tail" -d 'Follow a running daemon\'s events live (message status changes, received texts)'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output, e.g. `smsgate completions bash > /etc/bash_completion.d/smsgate`'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "man" -d 'Print the manual page (roff) to standard output: `smsgate man | man -l -`'
complete -c smsgate -n "__fish_smsgate_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand serve" -s c -l config -d 'The configuration file' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand serve" -l log-format -d 'Log format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line (for journald/Loki)'"
complete -c smsgate -n "__fish_smsgate_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand demo" -l listen -d 'Address to listen on' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand demo" -l data -d 'Keep the store here instead of a temporary directory (kept across runs)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand demo" -l token -d 'API token to use (default: a new random one)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand demo" -l webhook-url -d 'Where to POST events (message.sent, message.reply, …), e.g. a local receiver' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand demo" -l webhook-secret -d 'Webhook signing secret (`whsec_…`; default: a new random one, printed)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand demo" -l latency -d 'Simulated network time per message' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand demo" -l auth-failure-limit -d 'Wrong credentials one client address may send within a minute before it gets 429 (as `[http] auth_failure_limit`; 0: no limit, for tools that send wrong tokens on purpose)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand demo" -l log-format -d 'Log format' -r -f -a "human\t'Human-readable lines'
json\t'One JSON object per line (for journald/Loki)'"
complete -c smsgate -n "__fish_smsgate_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "check" -d 'Check a configuration file: every key, type and value; prints what is wrong and where, and warns about API keys without `scopes` or past their `expires_at`'
complete -c smsgate -n "__fish_smsgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Check a configuration file: every key, type and value; prints what is wrong and where, and warns about API keys without `scopes` or past their `expires_at`'
complete -c smsgate -n "__fish_smsgate_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and not __fish_seen_subcommand_from encode decode help" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and not __fish_seen_subcommand_from encode decode help" -f -a "encode" -d 'Encode a text into SMS-SUBMIT PDUs; prints JSON {"encoding", "parts":[{"pdu","tpdu_length"}]}'
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and not __fish_seen_subcommand_from encode decode help" -f -a "decode" -d 'Decode one PDU (SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT) into JSON'
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and not __fish_seen_subcommand_from encode decode help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from encode" -l to -d 'Destination: +E.164 (international) or national digits' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from encode" -l text -d 'The text; `-` reads it from standard input (one trailing newline is dropped)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from encode" -l smsc -d 'SMSC number to write into the PDU (default: the zero-length field, "use the SIM\'s SMSC")' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from encode" -l validity -d 'Relative validity period, e.g. `30m`, `12h`, `3d`, `2w` (rounded up to what TP-VP holds)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from encode" -l max-parts -d 'Most parts the text may take' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from encode" -l reference -d '8-bit concatenation reference for multi-part texts (default: derived from the clock)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from encode" -l message-reference -d 'TP-MR to write (modems usually replace it)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from encode" -l national-language -d 'National language shift tables the encoder may use to stay in GSM 7-bit (comma-separated: turkish, spanish, portuguese)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from encode" -l status-report -d 'Ask the network for a delivery report (TP-SRR)'
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from encode" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from decode" -l no-smsc -d 'The hex has no SMSC octets in front (it starts with the TPDU\'s first octet)'
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from decode" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from help" -f -a "encode" -d 'Encode a text into SMS-SUBMIT PDUs; prints JSON {"encoding", "parts":[{"pdu","tpdu_length"}]}'
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from help" -f -a "decode" -d 'Decode one PDU (SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT) into JSON'
complete -c smsgate -n "__fish_smsgate_using_subcommand pdu; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and not __fish_seen_subcommand_from probe send help" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and not __fish_seen_subcommand_from probe send help" -f -a "probe" -d 'Find modems: try each port (or every /dev/ttyUSB*, /dev/ttyACM*, /dev/serial/by-id/*) and show what answers AT: maker, model, IMEI, SIM, operator, registration, signal, SMSC, storage'
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and not __fish_seen_subcommand_from probe send help" -f -a "send" -d 'Send one SMS straight through a modem, without the daemon'
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and not __fish_seen_subcommand_from probe send help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from probe" -l baud -d 'Baud rate (USB modems ignore it)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from probe" -l timeout -d 'Time allowed per port' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from probe" -l json -d 'Print JSON instead of text'
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from probe" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from send" -l to -d 'Destination: +E.164, or national digits' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from send" -l text -d 'The text; `-` reads it from standard input (one trailing newline is dropped)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from send" -l pin -d 'SIM PIN, when the SIM asks for one (entered once; never retried if refused)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from send" -l baud -d 'Baud rate (USB modems ignore it)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from send" -l validity -d 'Relative validity period, e.g. `12h`, `3d`' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from send" -l max-parts -d 'Most parts the text may take' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from send" -l timeout -d 'How long to wait for the network to accept each part' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from send" -l status-report -d 'Ask the network for a delivery report'
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from send" -l json -d 'Print JSON: {"parts":[{"message_reference":n}]} (failed parts carry "error")'
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from send" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from help" -f -a "probe" -d 'Find modems: try each port (or every /dev/ttyUSB*, /dev/ttyACM*, /dev/serial/by-id/*) and show what answers AT: maker, model, IMEI, SIM, operator, registration, signal, SMSC, storage'
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from help" -f -a "send" -d 'Send one SMS straight through a modem, without the daemon'
complete -c smsgate -n "__fish_smsgate_using_subcommand modem; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and not __fish_seen_subcommand_from verify export help" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and not __fish_seen_subcommand_from verify export help" -f -a "verify" -d 'Check every message\'s hash chain (or one message\'s) and the audit log\'s; exit 3 when one is broken'
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and not __fish_seen_subcommand_from verify export help" -f -a "export" -d 'Write the history of every message to a number or about an invoice (`metadata.invoice`) to standard output'
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and not __fish_seen_subcommand_from verify export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from verify" -s c -l config -d 'The configuration file (its `[storage] path` is read)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from verify" -l store -d 'The store directory, instead of the configuration\'s' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from verify" -l id -d 'Only this message' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from verify" -l json -d 'Print the result as JSON'
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from export" -s c -l config -d 'The configuration file (its `[storage] path` is read)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from export" -l store -d 'The store directory, instead of the configuration\'s' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from export" -l to -d 'Messages to this number (E.164)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from export" -l invoice -d 'Messages whose `metadata.invoice` is this' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from export" -l format -d 'Output format' -r -f -a "jsonl\t'One JSON object per history entry and line'
csv\t'Comma-separated with a header line'"
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check every message\'s hash chain (or one message\'s) and the audit log\'s; exit 3 when one is broken'
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write the history of every message to a number or about an invoice (`metadata.invoice`) to standard output'
complete -c smsgate -n "__fish_smsgate_using_subcommand history; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and not __fish_seen_subcommand_from check copy export import compact migrate help" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and not __fish_seen_subcommand_from check copy export import compact migrate help" -f -a "check" -d 'Check the whole store: every record readable, every history chain whole, the indexes in agreement with the records. Exit 3 when anything is wrong'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and not __fish_seen_subcommand_from check copy export import compact migrate help" -f -a "copy" -d 'Copy a whole store between the embedded store and PostgreSQL, record for record (the same JSON, history chains intact), then print the records of each kind on both sides and check the copy (exit 3 when the check finds problems)'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and not __fish_seen_subcommand_from check copy export import compact migrate help" -f -a "export" -d 'Write every record of every tree, byte for byte, to a file or standard output: a full backup, for a dispute or a migration (`smsgate store import` reads it back)'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and not __fish_seen_subcommand_from check copy export import compact migrate help" -f -a "import" -d 'Make a new store from an export, in a new or empty directory (`--store`, or the configuration\'s `[storage] path`), then check it. Never merges'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and not __fish_seen_subcommand_from check copy export import compact migrate help" -f -a "compact" -d 'Rewrite the store into a fresh directory (sled\'s files do not shrink by themselves), check the copy and swap it in. The old store is kept as `<dir>.old-<time>`'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and not __fish_seen_subcommand_from check copy export import compact migrate help" -f -a "migrate" -d 'Bring a PostgreSQL store\'s schema up to this version\'s (`[storage] backend = "postgres"`), printing what was applied; gateways may run meanwhile. The embedded store has nothing to migrate'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and not __fish_seen_subcommand_from check copy export import compact migrate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from check" -s c -l config -d 'The configuration file (its `[storage] path` is read)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from check" -l store -d 'The store directory, instead of the configuration\'s' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from check" -l url -d 'A PostgreSQL store\'s URL (`postgres://user@host/database`), instead of the configuration\'s store' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from check" -l json -d 'Print the report as JSON'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from copy" -l from -d 'The store to copy: an embedded store\'s directory or a `postgres://` URL' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from copy" -l to -d 'Where the copy goes: a `postgres://` URL (an empty database) or a new or empty directory' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from copy" -l json -d 'Print what was copied and the check of the copy as JSON'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from copy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from export" -s c -l config -d 'The configuration file (its `[storage] path` is read)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from export" -l store -d 'The store directory, instead of the configuration\'s' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from export" -l format -d 'Output format' -r -f -a "jsonl\t'JSON Lines: a header, one line per record of every tree, an end line'"
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from export" -s o -l output -d 'The file to write (replaced if it exists); standard output when not given' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from import" -s c -l config -d 'The configuration file (its `[storage] path` is read)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from import" -l store -d 'The store directory, instead of the configuration\'s' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from import" -s i -l input -d 'The export to read (`-` for standard input)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from import" -l force -d 'Import even though the directory is not empty: what is there is moved aside to `<dir>.old-<time>` (not deleted, not merged)'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from compact" -s c -l config -d 'The configuration file (its `[storage] path` is read)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from compact" -l store -d 'The store directory, instead of the configuration\'s' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from compact" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from migrate" -s c -l config -d 'The configuration file (its `[storage]` is read; `SMSGATE_STORAGE_URL` gives the url)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from migrate" -l url -d 'The database\'s URL (`postgres://user@host/database`), instead of the configuration\'s' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from migrate" -l json -d 'Print what was done as JSON'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from migrate" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "check" -d 'Check the whole store: every record readable, every history chain whole, the indexes in agreement with the records. Exit 3 when anything is wrong'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "copy" -d 'Copy a whole store between the embedded store and PostgreSQL, record for record (the same JSON, history chains intact), then print the records of each kind on both sides and check the copy (exit 3 when the check finds problems)'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write every record of every tree, byte for byte, to a file or standard output: a full backup, for a dispute or a migration (`smsgate store import` reads it back)'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "import" -d 'Make a new store from an export, in a new or empty directory (`--store`, or the configuration\'s `[storage] path`), then check it. Never merges'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "compact" -d 'Rewrite the store into a fresh directory (sled\'s files do not shrink by themselves), check the copy and swap it in. The old store is kept as `<dir>.old-<time>`'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "migrate" -d 'Bring a PostgreSQL store\'s schema up to this version\'s (`[storage] backend = "postgres"`), printing what was applied; gateways may run meanwhile. The embedded store has nothing to migrate'
complete -c smsgate -n "__fish_smsgate_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l link -d 'Create this symlink to the PTY device (e.g. `/tmp/modem0`); it follows replugs and is removed on exit' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l log -d 'Append one JSON line per message the simulated network delivered to this file' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l command-log -d 'Append one JSON line per AT command line received (`{"at": …, "line": "AT+CMGS=23"}`) to this file' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l latency -d 'Network time of each `AT+CMGS`, e.g. `500ms`, `3s`' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l error-rate -d 'Probability (0 to 1) that an `AT+CMGS` fails' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l error-code -d 'The `+CMS ERROR` code of those failures' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l status-reports -d 'Delay of status reports after a send that asks for one, or `off`' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l status-code -d 'TP-ST of the status reports (0 delivered, 70 = 0x46 validity expired)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l pin -d 'The SIM asks for this PIN at start and after every replug' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l storage -d 'Slots in the SIM\'s message store' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l first-index -d 'The first message index (some modems count from 0)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l prompt-timeout -d 'How long the modem waits after the `> ` prompt for the PDU\'s Ctrl-Z or ESC before it answers `+CMS ERROR: 500` and takes commands again, or `off`' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l byte-time -d 'Time per byte on the line, each way: `1ms` is a 9600-baud serial link' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l seed -d 'Seed of the random choices (errors, noise)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l noise -d 'Emit unsolicited noise (`^RSSI`, `^HCSQ`, `^MODE`, `^BOOT`, `RING`, `+CREG: 1`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l no-echo -d 'Start with echo off (real modems start with it on)'
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l huawei-line-endings -d 'End lines with `\\r\\r\\n` like some Huawei firmwares'
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -l boot-urcs -d 'Send `RDY`, `+CFUN: 1`, `+CPIN: READY`, `SMS Ready` when a client first connects'
complete -c smsgate -n "__fish_smsgate_using_subcommand simulate" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand status" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand status" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand status" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand status" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand send" -l to -d 'Destination: +E.164, or national digits with the daemon\'s `[sms] default_region`' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand send" -l text -d 'The text; `-` reads it from standard input (one trailing newline is dropped)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand send" -l send-at -d 'Not before this time (RFC 3339, e.g. 2026-11-28T15:00:00-05:00)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand send" -l reply-option -d 'A reply choice the text offers, e.g. `1=call_me`; repeat for each' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand send" -l metadata -d 'A JSON object kept with the message and returned as given, e.g. \'{"invoice":"INV-1042"}\'' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand send" -l idempotency-key -d 'Idempotency-Key: the same key and text again returns the first message instead of a second one (safe retries from scripts)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand send" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand send" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand send" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand send" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand send" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and not __fish_seen_subcommand_from list show cancel requeue help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and not __fish_seen_subcommand_from list show cancel requeue help" -f -a "list" -d 'List messages, newest first (`GET /v1/messages`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and not __fish_seen_subcommand_from list show cancel requeue help" -f -a "show" -d 'Show one message with its history (`GET /v1/messages/{id}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and not __fish_seen_subcommand_from list show cancel requeue help" -f -a "cancel" -d 'Cancel a queued or scheduled message, or close an unknown or failed one (`POST /v1/messages/{id}/cancel`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and not __fish_seen_subcommand_from list show cancel requeue help" -f -a "requeue" -d 'Send an unknown, failed, expired or cancelled message again (`POST /v1/messages/{id}/requeue`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and not __fish_seen_subcommand_from list show cancel requeue help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from list" -l status -d 'Only messages in this status (queued, scheduled, sending, sent, delivered, failed, expired, cancelled, unknown)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from list" -l to -d 'Only messages to this number (any form)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from list" -l since -d 'Only messages created at or after this time: RFC 3339, a date (`2026-12-06`, midnight here), a local date and time (`2026-12-06 15:00`), or how long ago (`1h`, `2d`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from list" -l limit -d 'Page size, 1 to 1000 (the daemon\'s default: 50)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from list" -l cursor -d 'Start after this cursor (a page\'s `next_cursor`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from list" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from list" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from list" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from list" -l all -d 'Every page, following `next_cursor` (pages of `--limit`, default 1000)'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from list" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from show" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from show" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from show" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from show" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from cancel" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from cancel" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from cancel" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from cancel" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from cancel" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from requeue" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from requeue" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from requeue" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from requeue" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from requeue" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from help" -f -a "list" -d 'List messages, newest first (`GET /v1/messages`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one message with its history (`GET /v1/messages/{id}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from help" -f -a "cancel" -d 'Cancel a queued or scheduled message, or close an unknown or failed one (`POST /v1/messages/{id}/cancel`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from help" -f -a "requeue" -d 'Send an unknown, failed, expired or cancelled message again (`POST /v1/messages/{id}/requeue`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand messages; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and not __fish_seen_subcommand_from list help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and not __fish_seen_subcommand_from list help" -f -a "list" -d 'List received messages, newest first (`GET /v1/inbound`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and not __fish_seen_subcommand_from list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and __fish_seen_subcommand_from list" -l from -d 'Only messages from this number (any form), short code or sender name' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and __fish_seen_subcommand_from list" -l since -d 'Only messages received at or after this time: RFC 3339, a date (`2026-12-06`, midnight here), a local date and time (`2026-12-06 15:00`), or how long ago (`1h`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and __fish_seen_subcommand_from list" -l limit -d 'Page size, 1 to 1000 (the daemon\'s default: 50)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and __fish_seen_subcommand_from list" -l cursor -d 'Start after this cursor (a page\'s `next_cursor`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and __fish_seen_subcommand_from list" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and __fish_seen_subcommand_from list" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and __fish_seen_subcommand_from list" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and __fish_seen_subcommand_from list" -l all -d 'Every page, following `next_cursor` (pages of `--limit`, default 1000)'
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and __fish_seen_subcommand_from list" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and __fish_seen_subcommand_from help" -f -a "list" -d 'List received messages, newest first (`GET /v1/inbound`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand inbound; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and not __fish_seen_subcommand_from create list patch delete show paid help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and not __fish_seen_subcommand_from create list patch delete show paid help" -f -a "create" -d 'Make an invoice\'s reminder plan (`POST /v1/reminders`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and not __fish_seen_subcommand_from create list patch delete show paid help" -f -a "list" -d 'List plans, newest first (`GET /v1/reminders`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and not __fish_seen_subcommand_from create list patch delete show paid help" -f -a "patch" -d 'Change a plan: its unsent steps are made again, sent ones kept (`PATCH /v1/reminders/{id}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and not __fish_seen_subcommand_from create list patch delete show paid help" -f -a "delete" -d 'Cancel a plan: its unsent steps are cancelled (`DELETE /v1/reminders/{id}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and not __fish_seen_subcommand_from create list patch delete show paid help" -f -a "show" -d 'Show a plan: every step with its status, send time and text (`GET /v1/reminders/{id}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and not __fish_seen_subcommand_from create list patch delete show paid help" -f -a "paid" -d 'Mark the invoice paid: pending steps are cancelled and the confirmation is sent once (`POST /v1/reminders/{id}/paid`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and not __fish_seen_subcommand_from create list patch delete show paid help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l to -d 'Recipient: +E.164, or national digits with `[sms] default_region`' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l invoice -d 'The invoice reference (one plan per invoice)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l amount -d 'Amount due, a decimal such as 120.50' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l currency -d 'ISO 4217 currency code, e.g. USD' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l due-date -d 'Due date in the recipient\'s calendar' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l timezone -d 'The recipient\'s IANA time zone, e.g. America/New_York (default `[reminders] timezone`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l locale -d 'Locale of money and dates in the texts, e.g. en-US (default `[reminders] locale`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l name -d 'The customer\'s name (`{{ name }}`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l pay-url -d 'A payment link (`{{ pay_url }}`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l unit -d 'Unit (`{{ unit }}`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l property -d 'Property (`{{ property }}`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l var -d 'Another template variable; repeat for each' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l json-body -d 'The request body (JSON) from a file, or `-` for standard input: for a `schedule`, a `send_window`, `metadata` and anything else. The options above override its fields' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from list" -l to -d 'Only plans to this number (any form)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from list" -l status -d 'Only plans in this status (active, paid, cancelled)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from list" -l limit -d 'Page size, 1 to 1000 (the daemon\'s default: 50)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from list" -l cursor -d 'Start after this cursor (a page\'s `next_cursor`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from list" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from list" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from list" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from list" -l all -d 'Every page, following `next_cursor` (pages of `--limit`, default 1000)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from list" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from patch" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from patch" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from patch" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from patch" -l due-date -d 'New due date' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from patch" -l amount -d 'New amount due' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from patch" -l currency -d 'New currency (ISO 4217)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from patch" -l name -d 'New customer name' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from patch" -l pay-url -d 'New payment link' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from patch" -l var -d 'A template variable to set, e.g. `desk=Bo`; repeat for each' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from patch" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from patch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from delete" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from delete" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from delete" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from delete" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from show" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from show" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from show" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from show" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from paid" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from paid" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from paid" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from paid" -l amount-paid -d 'The amount received (`{{ amount_paid }}`; default the amount due)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from paid" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from paid" -l no-confirm -d 'Send no confirmation text'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from paid" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from help" -f -a "create" -d 'Make an invoice\'s reminder plan (`POST /v1/reminders`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from help" -f -a "list" -d 'List plans, newest first (`GET /v1/reminders`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from help" -f -a "patch" -d 'Change a plan: its unsent steps are made again, sent ones kept (`PATCH /v1/reminders/{id}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Cancel a plan: its unsent steps are cancelled (`DELETE /v1/reminders/{id}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show a plan: every step with its status, send time and text (`GET /v1/reminders/{id}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from help" -f -a "paid" -d 'Mark the invoice paid: pending steps are cancelled and the confirmation is sent once (`POST /v1/reminders/{id}/paid`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand reminders; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and not __fish_seen_subcommand_from add remove list help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and not __fish_seen_subcommand_from add remove list help" -f -a "add" -d 'Opt a number out: it gets no messages, its waiting ones are cancelled; nothing is sent to it (`POST /v1/opt-outs`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and not __fish_seen_subcommand_from add remove list help" -f -a "remove" -d 'Let a number get messages again; nothing is sent to it (`DELETE /v1/opt-outs/{number}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and not __fish_seen_subcommand_from add remove list help" -f -a "list" -d 'List opted-out numbers, in number order (`GET /v1/opt-outs`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and not __fish_seen_subcommand_from add remove list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from add" -l note -d 'Why, for the record' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from add" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from add" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from add" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from add" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from remove" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from remove" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from remove" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from remove" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from list" -l limit -d 'Page size, 1 to 1000 (the daemon\'s default: 50)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from list" -l cursor -d 'Start after this cursor (a page\'s `next_cursor`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from list" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from list" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from list" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from list" -l all -d 'Every page, following `next_cursor` (pages of `--limit`, default 1000)'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from list" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from help" -f -a "add" -d 'Opt a number out: it gets no messages, its waiting ones are cancelled; nothing is sent to it (`POST /v1/opt-outs`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Let a number get messages again; nothing is sent to it (`DELETE /v1/opt-outs/{number}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from help" -f -a "list" -d 'List opted-out numbers, in number order (`GET /v1/opt-outs`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand optout; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand audit" -l actor -d 'Only the actions of the API key of this name' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand audit" -l since -d 'Only actions at or after this time: RFC 3339, a date (`2026-12-06`, midnight here), a local date and time (`2026-12-06 15:00`), or how long ago (`1h`, `2d`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand audit" -l limit -d 'Page size, 1 to 1000 (the daemon\'s default: 50)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand audit" -l cursor -d 'Start after this cursor (a page\'s `next_cursor`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand audit" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand audit" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand audit" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand audit" -l all -d 'Every page, following `next_cursor` (pages of `--limit`, default 1000)'
complete -c smsgate -n "__fish_smsgate_using_subcommand audit" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand audit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand backup" -l to -d 'The file to write the backup to (JSON Lines, for `smsgate store import`). It is written as FILE.partial and renamed when complete' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand backup" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand backup" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand backup" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand backup" -l force -d 'Replace FILE when it exists (only once the new backup is complete)'
complete -c smsgate -n "__fish_smsgate_using_subcommand backup" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand tail" -l url -d 'The daemon\'s base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the configuration\'s `[http] listen`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand tail" -l token -d 'API token (default: the first `[[api_keys]]` of the configuration with a plain `token`)' -r
complete -c smsgate -n "__fish_smsgate_using_subcommand tail" -l config -d 'Configuration file to take the URL and token from, when they are not given (default: /etc/smsgate/smsgate.toml, when it exists)' -r -F
complete -c smsgate -n "__fish_smsgate_using_subcommand tail" -l json -d 'Print the API\'s JSON answer as it is (pretty-printed), for scripts; never coloured'
complete -c smsgate -n "__fish_smsgate_using_subcommand tail" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smsgate -n "__fish_smsgate_using_subcommand completions" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand man" -s h -l help -d 'Print help'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "serve" -d 'Run the gateway with a configuration file'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "demo" -d 'Run the whole gateway with the built-in simulated modem: no hardware, no configuration'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "config" -d 'Check a configuration file'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "pdu" -d 'Encode a text into SMS-SUBMIT PDUs, or decode a PDU read off a modem'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "modem" -d 'Talk to a modem directly, without the daemon: find it, send a test message'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "history" -d 'Check or export the tamper-evident message history (on the store, daemon stopped)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "store" -d 'Check, export, import or compact the whole store (daemon stopped), copy it between the embedded store and PostgreSQL, or migrate a PostgreSQL store\'s schema'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "simulate" -d 'Run the built-in modem simulator on a pseudo-terminal (for tests, demos and trying things out)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "status" -d 'Show a running daemon\'s modems and queue; exit 1 when no modem is up'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "send" -d 'Send one SMS through a running daemon'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "messages" -d 'List, show, cancel or requeue a running daemon\'s messages'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "inbound" -d 'List the messages customers sent'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "reminders" -d 'Reminder plans: make one, show one, mark one paid'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "optout" -d 'Add, remove or list opted-out numbers'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "audit" -d 'List who did what: a running daemon\'s audit log (templates, opt-outs, reloads, USSD)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "backup" -d 'Back up a running daemon\'s store into a file, for `smsgate store import`'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "tail" -d 'Follow a running daemon\'s events live (message status changes, received texts)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output, e.g. `smsgate completions bash > /etc/bash_completion.d/smsgate`'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "man" -d 'Print the manual page (roff) to standard output: `smsgate man | man -l -`'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and not __fish_seen_subcommand_from serve demo config pdu modem history store simulate status send messages inbound reminders optout audit backup tail completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Check a configuration file: every key, type and value; prints what is wrong and where, and warns about API keys without `scopes` or past their `expires_at`'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from pdu" -f -a "encode" -d 'Encode a text into SMS-SUBMIT PDUs; prints JSON {"encoding", "parts":[{"pdu","tpdu_length"}]}'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from pdu" -f -a "decode" -d 'Decode one PDU (SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT) into JSON'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from modem" -f -a "probe" -d 'Find modems: try each port (or every /dev/ttyUSB*, /dev/ttyACM*, /dev/serial/by-id/*) and show what answers AT: maker, model, IMEI, SIM, operator, registration, signal, SMSC, storage'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from modem" -f -a "send" -d 'Send one SMS straight through a modem, without the daemon'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from history" -f -a "verify" -d 'Check every message\'s hash chain (or one message\'s) and the audit log\'s; exit 3 when one is broken'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from history" -f -a "export" -d 'Write the history of every message to a number or about an invoice (`metadata.invoice`) to standard output'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "check" -d 'Check the whole store: every record readable, every history chain whole, the indexes in agreement with the records. Exit 3 when anything is wrong'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "copy" -d 'Copy a whole store between the embedded store and PostgreSQL, record for record (the same JSON, history chains intact), then print the records of each kind on both sides and check the copy (exit 3 when the check finds problems)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "export" -d 'Write every record of every tree, byte for byte, to a file or standard output: a full backup, for a dispute or a migration (`smsgate store import` reads it back)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "import" -d 'Make a new store from an export, in a new or empty directory (`--store`, or the configuration\'s `[storage] path`), then check it. Never merges'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "compact" -d 'Rewrite the store into a fresh directory (sled\'s files do not shrink by themselves), check the copy and swap it in. The old store is kept as `<dir>.old-<time>`'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "migrate" -d 'Bring a PostgreSQL store\'s schema up to this version\'s (`[storage] backend = "postgres"`), printing what was applied; gateways may run meanwhile. The embedded store has nothing to migrate'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from messages" -f -a "list" -d 'List messages, newest first (`GET /v1/messages`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from messages" -f -a "show" -d 'Show one message with its history (`GET /v1/messages/{id}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from messages" -f -a "cancel" -d 'Cancel a queued or scheduled message, or close an unknown or failed one (`POST /v1/messages/{id}/cancel`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from messages" -f -a "requeue" -d 'Send an unknown, failed, expired or cancelled message again (`POST /v1/messages/{id}/requeue`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from inbound" -f -a "list" -d 'List received messages, newest first (`GET /v1/inbound`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from reminders" -f -a "create" -d 'Make an invoice\'s reminder plan (`POST /v1/reminders`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from reminders" -f -a "list" -d 'List plans, newest first (`GET /v1/reminders`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from reminders" -f -a "patch" -d 'Change a plan: its unsent steps are made again, sent ones kept (`PATCH /v1/reminders/{id}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from reminders" -f -a "delete" -d 'Cancel a plan: its unsent steps are cancelled (`DELETE /v1/reminders/{id}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from reminders" -f -a "show" -d 'Show a plan: every step with its status, send time and text (`GET /v1/reminders/{id}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from reminders" -f -a "paid" -d 'Mark the invoice paid: pending steps are cancelled and the confirmation is sent once (`POST /v1/reminders/{id}/paid`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from optout" -f -a "add" -d 'Opt a number out: it gets no messages, its waiting ones are cancelled; nothing is sent to it (`POST /v1/opt-outs`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from optout" -f -a "remove" -d 'Let a number get messages again; nothing is sent to it (`DELETE /v1/opt-outs/{number}`)'
complete -c smsgate -n "__fish_smsgate_using_subcommand help; and __fish_seen_subcommand_from optout" -f -a "list" -d 'List opted-out numbers, in number order (`GET /v1/opt-outs`)'
