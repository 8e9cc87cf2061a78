%% probe.erl: the event pusher's cost per chat message inside a running
%% MongooseIM node, without the XMPP traffic around it. scripts/bench_e2e.sh
%% compiles it in the node (erl_call) after each load and records run/1.
%%
%% run(N) makes N chat messages' worth of events from one process (for each,
%% the `out' event of the sender's side and the `in' event of the
%% receiver's, as mod_event_pusher_hook_translator raises them) through
%% mod_event_pusher:push_event/2, i.e. every backend the node's config
%% enables, and waits until the node's CPU settles (every request answered,
%% every result counted). It returns, per message:
%%   node_cpu_us  CPU of the node's OS process (every thread: schedulers,
%%                dirty schedulers, the NIF's runtime and reporters);
%%   caller_us    wall time the calling process spent in the two hook runs;
%% and instr_us: one mongoose_instrument:execute/3 of the backend's result
%% event, i.e. what MongooseIM's configured instrumentation handlers cost
%% per result (the same for both modules: each result is reported once).
-module(probe).
-export([run/1]).

-define(HOST, <<"localhost">>).

run(N) ->
    From = jid:make(<<"probe_a">>, ?HOST, <<"r">>),
    To = jid:make(<<"probe_b">>, ?HOST, <<"r">>),
    Body = {xmlel, <<"body">>, #{}, [{xmlcdata, binary:copy(<<"x">>, 32), escaped}]},
    Packet = {xmlel, <<"message">>,
              #{<<"type">> => <<"chat">>, <<"to">> => jid:to_binary(To), <<"id">> => <<"p">>},
              [Body]},
    Acc = mongoose_acc:new(#{location => #{mfa => {?MODULE, run, 1}, line => ?LINE, file => ?FILE},
                             lserver => ?HOST, host_type => ?HOST, element => Packet,
                             from_jid => From, to_jid => To}),
    Out = {chat_event, chat, out, From, To, Packet},
    In = {chat_event, chat, in, From, To, Packet},
    settle(),
    {Cpu0, _} = statistics(runtime),
    T0 = erlang:monotonic_time(microsecond),
    loop(N, Acc, Out, In),
    T1 = erlang:monotonic_time(microsecond),
    settle(),
    {Cpu1, _} = statistics(runtime),
    #{messages => N,
      caller_us => round1((T1 - T0) / N),
      node_cpu_us => round1((Cpu1 - Cpu0) * 1000 / N),
      instr_us => instr(20000)}.

loop(0, _Acc, _Out, _In) ->
    ok;
loop(N, Acc, Out, In) ->
    mod_event_pusher:push_event(Acc, Out),
    mod_event_pusher:push_event(Acc, In),
    loop(N - 1, Acc, Out, In).

%% Until the node uses under 2 ms of CPU in 100 ms (twice in a row), at
%% most 30 s: the pools have finished their work.
settle() ->
    settle(0, erlang:monotonic_time(millisecond) + 30000).

settle(Quiet, _Deadline) when Quiet >= 2 ->
    ok;
settle(Quiet, Deadline) ->
    {C0, _} = statistics(runtime),
    timer:sleep(100),
    {C1, _} = statistics(runtime),
    case erlang:monotonic_time(millisecond) > Deadline of
        true -> ok;
        false when C1 - C0 < 2 -> settle(Quiet + 1, Deadline);
        false -> settle(0, Deadline)
    end.

%% The first registered result event of the enabled backends.
instr(N) ->
    Candidates = [{mod_event_pusher_http_sent, #{host_type => ?HOST},
                   #{count => 1, response_time => 1000}},
                  {wpool_global_rabbit_messages_published, #{pool_tag => event_pusher},
                   #{count => 1, time => 1000, size => 100}}],
    instr(Candidates, N).

instr([], _N) ->
    null;
instr([{Event, Labels, M} | Rest], N) ->
    try mongoose_instrument:execute(Event, Labels, M) of
        _ ->
            T0 = erlang:monotonic_time(microsecond),
            instr_loop(N, Event, Labels, M),
            round1((erlang:monotonic_time(microsecond) - T0) / N)
    catch
        error:_ -> instr(Rest, N)
    end.

instr_loop(0, _, _, _) -> ok;
instr_loop(N, Event, Labels, M) ->
    mongoose_instrument:execute(Event, Labels, M),
    instr_loop(N - 1, Event, Labels, M).

round1(X) ->
    round(X * 10) / 10.
