#!/usr/bin/env escript
%% dist-erl.escript — the two dist benchmarks between two Erlang nodes on
%% this machine, the figures troupe's bench/dist-pingpong and
%% bench/dist-stream are compared with (docs/bench.md):
%%
%%   escript bench/dist-erl.escript pingpong N     N round trips
%%   escript bench/dist-erl.escript stream K N     K senders x N messages
%%
%% Same workloads, same checks, same result line (impl=erlang). This node
%% (bde_a<pid>) runs the pinger or the senders; the other one is
%% `erl -noshell` (bde_b<pid>), with `pong` (sends {self(), X} back for
%% {From, X}) and `sink` (checks each message against its sender's next
%% sequence number, acknowledges every 1024th: a sender keeps at most
%% 16384 unacknowledged, as in dist-stream.c). Without ERL_EPMD_PORT it
%% starts an epmd of its own on a free port, runs itself again with it and
%% kills it at the end.
-mode(compile).

-define(COOKIE, "troupe_bench_cookie").
-define(ACK_EVERY, 1024).
-define(WINDOW, 16 * ?ACK_EVERY).
-define(WAIT, 60000).

main(Args) ->
    case os:getenv("ERL_EPMD_PORT") of
        false -> with_epmd(Args);
        _ -> run(Args)
    end.

with_epmd(Args) ->
    {ok, L} = gen_tcp:listen(0, [{ip, loopback}]),
    {ok, P} = inet:port(L),
    gen_tcp:close(L),
    Port = integer_to_list(P),
    os:cmd("epmd -daemon -relaxed_command_check -port " ++ Port),
    wait_epmd(P, 100),
    Self = escript:script_name(),
    Pt = open_port({spawn_executable, os:find_executable("escript")},
                   [{args, [Self | Args]}, {env, [{"ERL_EPMD_PORT", Port}]},
                    exit_status, stderr_to_stdout, binary]),
    Rc = relay(Pt),
    os:cmd("epmd -port " ++ Port ++ " -kill"),
    halt(Rc).

wait_epmd(_, 0) -> ok;
wait_epmd(P, Tries) ->
    case gen_tcp:connect({127, 0, 0, 1}, P, []) of
        {ok, S} -> gen_tcp:close(S);
        _ -> timer:sleep(100), wait_epmd(P, Tries - 1)
    end.

relay(Pt) ->
    receive
        {Pt, {data, D}} -> io:put_chars(D), relay(Pt);
        {Pt, {exit_status, S}} -> S
    end.

run(Args) ->
    Id = os:getpid(),
    {ok, _} = net_kernel:start([list_to_atom("bde_a" ++ Id), shortnames]),
    erlang:set_cookie(node(), list_to_atom(?COOKIE)),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    B = "bde_b" ++ Id,
    Peer = list_to_atom(B ++ "@" ++ Host),
    Pt = open_port({spawn_executable, os:find_executable("erl")},
                   [{args, ["-noshell", "-sname", B, "-setcookie", ?COOKIE,
                            "-eval", "io:format(\"ready~n\")."]},
                    exit_status, stderr_to_stdout, binary]),
    ready(Pt, <<>>),
    ok = start_peer(Peer),
    Line = work(Args, Peer),
    spawn(Peer, erlang, halt, []),
    receive {Pt, {exit_status, _}} -> ok after ?WAIT -> ok end,
    io:put_chars(Line),
    halt(0).

ready(Pt, Seen) ->
    receive
        {Pt, {data, D}} ->
            All = <<Seen/binary, D/binary>>,
            case binary:match(All, <<"ready">>) of
                nomatch -> ready(Pt, All);
                _ -> ok
            end;
        {Pt, {exit_status, S}} -> io:format("peer exited: ~p~n~s", [S, Seen]), halt(1)
    after ?WAIT -> io:format("peer not ready~n"), halt(1)
    end.

%% The peer's processes, compiled here and loaded there: code run by -eval
%% would be interpreted, several times slower than what Erlang users run.
peer_source() ->
    ["-module(bde_peer).",
     "-export([pong/0, sink/3]).",
     "pong() -> receive {From, X} -> From ! {self(), X}, pong() end.",
     "sink(N, Exp, Bad) ->"
     "  receive"
     "    {setup, N2} -> sink(N2, #{}, 0);"
     "    {hello, From} -> From ! {sink, self()}, sink(N, Exp, Bad);"
     "    {From, I, Seq} ->"
     "      case maps:get(I, Exp, 0) of"
     "        Seq -> Got = Seq + 1,"
     "               if Got rem 1024 =:= 0; Got =:= N -> From ! {ack, Got, Bad}; true -> ok end,"
     "               sink(N, Exp#{I => Got}, Bad);"
     "        _ -> sink(N, Exp, Bad + 1)"
     "      end"
     "  end."].

start_peer(Peer) ->
    Forms = [begin {ok, Ts, _} = erl_scan:string(S), {ok, F} = erl_parse:parse_form(Ts), F end
             || S <- peer_source()],
    {ok, Mod, Bin} = compile:forms(Forms),
    {module, Mod} = rpc:call(Peer, code, load_binary, [Mod, "bde_peer.erl", Bin]),
    true = rpc:call(Peer, erlang, register, [pong, spawn(Peer, Mod, pong, [])]),
    true = rpc:call(Peer, erlang, register, [sink, spawn(Peer, Mod, sink, [0, #{}, 0])]),
    ok.

now_ns() -> erlang:monotonic_time(nanosecond).

threads() -> erlang:system_info(schedulers_online).

check(true) -> "ok";
check(false) -> "FAIL".

work(["pingpong", NS], Peer) ->
    N = list_to_integer(NS),
    {pong, Peer} ! {self(), hello},
    Pong = receive {P, hello} -> P after ?WAIT -> exit(no_pong) end,
    T0 = now_ns(),
    Lat = ping(Pong, 0, N, []),
    Secs = (now_ns() - T0) / 1.0e9,
    Sorted = list_to_tuple(lists:sort(Lat)),
    P50 = element((N - 1) div 2 + 1, Sorted),
    P99 = element((N - 1) * 99 div 100 + 1, Sorted),
    io_lib:format("bench=dist-pingpong impl=erlang threads=~b n=~b p50_us=~.1f p99_us=~.1f "
                  "secs=~.3f rate=~b unit=round_trips check=~s~n",
                  [threads(), N, P50, P99, Secs, round(N / Secs), check(length(Lat) =:= N)]);
work(["stream", KS, NS], Peer) ->
    K = list_to_integer(KS),
    N = list_to_integer(NS),
    {sink, Peer} ! {setup, N},
    {sink, Peer} ! {hello, self()},
    Sink = receive {sink, S} -> S after ?WAIT -> exit(no_sink) end,
    Main = self(),
    T0 = now_ns(),
    [spawn_link(fun() -> send(Main, Sink, I, N, 0, 0, 0) end) || I <- lists:seq(0, K - 1)],
    Bad = lists:max([receive {done, _, B} -> B after ?WAIT * 10 -> exit(sender_stuck) end
                     || _ <- lists:seq(1, K)]),
    Secs = (now_ns() - T0) / 1.0e9,
    io_lib:format("bench=dist-stream impl=erlang threads=~b senders=~b n=~b secs=~.3f "
                  "rate=~b unit=messages check=~s~n",
                  [threads(), K, N, Secs, round(K * N / Secs), check(Bad =:= 0)]).

ping(_, N, N, Acc) -> Acc;
ping(Pong, I, N, Acc) ->
    T = now_ns(),
    Pong ! {self(), I},
    receive
        {Pong, I} -> ping(Pong, I + 1, N, [(now_ns() - T) / 1000 | Acc])
    after ?WAIT -> exit({no_answer, I})
    end.

%% Sends while fewer than ?WINDOW are unacknowledged; done when the sink
%% has acknowledged all N in order.
send(Main, _, I, N, _, N, Bad) -> Main ! {done, I, Bad};
send(Main, Sink, I, N, Next, Acked, Bad) when Next < N, Next - Acked < ?WINDOW ->
    Sink ! {self(), I, Next},
    send(Main, Sink, I, N, Next + 1, Acked, Bad);
send(Main, Sink, I, N, Next, _, _) ->
    receive {ack, Got, Bad} -> send(Main, Sink, I, N, Next, Got, Bad)
    after ?WAIT -> exit({no_ack, I})
    end.
