# helpers.tcl runs one of Redis's Tcl test files (tests/unit/pubsub.tcl,
# say) against a server already listening, round after round, and counts
# how each test fared. It stands in for the helpers of Redis's own test
# suite with the few a pub/sub test file uses: start_server, test,
# r, redis_deferring_client, the assert procs and wait_for_condition.
#
#   tclsh helpers.tcl PORT FILE ROUNDS
#
# A test that fails on a command the server does not have ("unknown" or
# "unsupported command": keyspace notifications on a server without keys)
# is counted as unreachable, not failed. The clients a test leaves open are closed
# when it ends, so that one failure does not spill into the next tests.
# bench/redistcl/run.sh runs a file on redis-server and pubsubd alike.

set ::host 127.0.0.1
lassign $argv ::port ::file ::rounds
array set ::passed {}
array set ::failed {}
array set ::unreachable {}
array set ::lastError {}
set ::open {}
set ::clients 0

# read_reply reads one reply as Redis's Tcl client returns it: an error
# reply raises, RESP3's maps come as flat lists, null as {}.
proc read_reply {fd} {
    set line [gets $fd]
    if {[eof $fd]} { error "connection closed by the server" }
    set line [string trimright $line "\r"]
    set rest [string range $line 1 end]
    switch -- [string index $line 0] {
        + - : - , - ( { return $rest }
        - { return -code error $rest }
        _ { return {} }
        # { return [expr {$rest eq "t"}] }
        $ - = {
            if {$rest < 0} { return {} }
            set data [read $fd [expr {$rest + 2}]]
            return [string range $data 0 end-2]
        }
        * - ~ - > {
            set l {}
            for {set i 0} {$i < $rest} {incr i} { lappend l [read_reply $fd] }
            return $l
        }
        % {
            set l {}
            for {set i 0} {$i < 2 * $rest} {incr i} { lappend l [read_reply $fd] }
            return $l
        }
        default { error "unexpected reply: $line" }
    }
}

proc send_command {fd args} {
    set cmd "*[llength $args]\r\n"
    foreach a $args { append cmd "\$[string length $a]\r\n$a\r\n" }
    puts -nonewline $fd $cmd
    flush $fd
}

# A client is a command: "$c read", "$c close", or any Redis command, which
# a deferring client only sends and any other client also answers.
proc client {fd deferring method args} {
    switch -- $method {
        read { return [read_reply $fd] }
        close { close $fd }
        default {
            send_command $fd $method {*}$args
            if {!$deferring} { return [read_reply $fd] }
        }
    }
}

proc new_client {deferring} {
    set fd [socket $::host $::port]
    fconfigure $fd -translation binary -buffering full
    set name ::redisclient[incr ::clients]
    interp alias {} $name {} client $fd $deferring
    # Redis's suite works in database 9; a server without SELECT says so.
    send_command $fd select 9
    catch {read_reply $fd}
    return $name
}

proc redis_deferring_client {args} {
    set c [new_client 1]
    lappend ::open $c
    return $c
}
proc redis_client {args} {
    set c [new_client 0]
    lappend ::open $c
    return $c
}
proc r {args} { $::r {*}$args }

proc assert {cond} {
    if {![uplevel 1 [list expr $cond]]} { error "assertion failed: $cond" }
}
proc assert_equal {want got {detail {}}} {
    if {$want ne $got} { error "expected '$want', got '$got' $detail" }
}
proc assert_match {pattern got {detail {}}} {
    if {![string match $pattern $got]} { error "expected '$got' to match '$pattern' $detail" }
}
proc assert_error {pattern code} {
    if {![catch {uplevel 1 $code} err]} { error "expected an error matching '$pattern'" }
    if {![string match $pattern $err]} { error "expected an error matching '$pattern', got '$err'" }
}
proc assert_range {value min max} {
    if {!($value >= $min && $value <= $max)} { error "expected $min <= $value <= $max" }
}
proc fail {msg} { error "failed: $msg" }

proc wait_for_condition {tries delay cond else elsescript} {
    for {set i 0} {$i < $tries} {incr i} {
        if {[uplevel 1 [list expr $cond]]} { return }
        after $delay
    }
    uplevel 1 $elsescript
}

proc close_test_clients {} {
    foreach c $::open { catch {$c close} }
    set ::open {}
}

proc test {name body {expected __none__} args} {
    set err [catch {uplevel 1 $body} res]
    close_test_clients
    if {$err && ([string match "*unknown command*" $res] || [string match "*unsupported command*" $res])} {
        incr ::unreachable($name)
        return
    }
    if {!$err && $expected ne "__none__" && $res ne $expected} {
        set err 1
        set res "expected '$expected', got '$res'"
    }
    if {$err} {
        incr ::failed($name)
        set ::lastError($name) $res
        return
    }
    incr ::passed($name)
}

proc start_server {options body} { uplevel 1 $body }
proc tags {tags body} { uplevel 1 $body }

for {set round 0} {$round < $::rounds} {incr round} {
    set ::r [new_client 0]
    source $::file
    catch {$::r close}
}

set runs 0
set failures 0
foreach name [array names ::passed] { incr runs $::passed($name) }
foreach name [lsort [array names ::failed]] {
    incr failures $::failed($name)
    puts "failed $::failed($name) of $::rounds: $name ($::lastError($name))"
}
puts "unreachable: [llength [array names ::unreachable]] tests"
set reached [llength [lsort -unique [concat [array names ::passed] [array names ::failed]]]]
puts "$reached tests reached, $::rounds rounds: $runs passed, $failures failed"
