%% The bench sink (bench/sink) seen from a BEAM row: its counters, and
%% waiting until it has counted every event (the finish line of the rows
%% that post to it: http, mongoosepush).
-module(bench_sink).

-export([count/1, reset/1, wait_for/3]).

-define(SINK_TIMEOUT_MS, 5000).

%% The sink's counters: requests and body bytes received since its last reset.
-spec count(inet:port_number()) -> {non_neg_integer(), non_neg_integer()}.
count(Port) -> sink_get(Port, "/count").

%% Zeroes the sink's counters; returns what they held.
-spec reset(inet:port_number()) -> {non_neg_integer(), non_neg_integer()}.
reset(Port) -> sink_get(Port, "/reset").

sink_get(Port, Path) ->
    {ok, Sock} = gen_tcp:connect({127, 0, 0, 1}, Port,
                                 [binary, {active, false}, {packet, raw}], ?SINK_TIMEOUT_MS),
    ok = gen_tcp:send(Sock, ["GET ", Path, " HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                                           "connection: close\r\n\r\n"]),
    Reply = recv_all(Sock, []),
    ok = gen_tcp:close(Sock),
    [_Head, Body] = string:split(Reply, <<"\r\n\r\n">>),
    [Requests, Bytes] = binary:split(Body, [<<" ">>, <<"\n">>], [global, trim_all]),
    {binary_to_integer(Requests), binary_to_integer(Bytes)}.

recv_all(Sock, Acc) ->
    case gen_tcp:recv(Sock, 0, ?SINK_TIMEOUT_MS) of
        {ok, Data} -> recv_all(Sock, [Acc, Data]);
        {error, closed} -> iolist_to_binary(Acc)
    end.

%% Polls the sink until it has counted Expected requests. Returns the time it
%% saw them (native monotonic), or {timeout, Count} at the deadline.
%%
%% The polls are part of the measured process's CPU time, not of the path
%% measured, so they are made cheap: one keep-alive connection for all of
%% them, and a pause that follows the remaining work (half the time the rest
%% should take at the rate seen so far, 1 to 20 ms), so that the end is still
%% seen within about a millisecond.
-spec wait_for(inet:port_number(), non_neg_integer(), pos_integer()) ->
    {ok, integer()} | {timeout, non_neg_integer()}.
wait_for(Port, Expected, TimeoutMs) ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    {ok, Sock} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}, {packet, raw}],
                                 ?SINK_TIMEOUT_MS),
    try
        poll_sink(Sock, Expected, Deadline, undefined)
    after
        gen_tcp:close(Sock)
    end.

poll_sink(Sock, Expected, Deadline, Last) ->
    Count = keepalive_count(Sock),
    Now = erlang:monotonic_time(),
    case Count >= Expected of
        true ->
            {ok, Now};
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true ->
                    {timeout, Count};
                false ->
                    timer:sleep(pause_ms(Expected - Count, Count, Now, Last)),
                    poll_sink(Sock, Expected, Deadline, {Count, Now})
            end
    end.

pause_ms(Remaining, Count, Now, {LastCount, LastTime}) when Count > LastCount ->
    NsPerEvent = erlang:convert_time_unit(Now - LastTime, native, nanosecond)
        / (Count - LastCount),
    max(1, min(20, round(Remaining * NsPerEvent / 2.0e6)));
pause_ms(_Remaining, _Count, _Now, _Last) ->
    1.

%% GET /count on an open keep-alive connection.
keepalive_count(Sock) ->
    ok = gen_tcp:send(Sock, <<"GET /count HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n">>),
    ok = inet:setopts(Sock, [{packet, http_bin}]),
    {ok, {http_response, _, 200, _}} = gen_tcp:recv(Sock, 0, ?SINK_TIMEOUT_MS),
    Length = content_length(Sock, 0),
    ok = inet:setopts(Sock, [{packet, raw}]),
    {ok, Body} = gen_tcp:recv(Sock, Length, ?SINK_TIMEOUT_MS),
    [Requests, _Bytes] = binary:split(Body, [<<" ">>, <<"\n">>], [global, trim_all]),
    binary_to_integer(Requests).

content_length(Sock, Length) ->
    case gen_tcp:recv(Sock, 0, ?SINK_TIMEOUT_MS) of
        {ok, {http_header, _, 'Content-Length', _, Value}} ->
            content_length(Sock, binary_to_integer(Value));
        {ok, {http_header, _, _, _, _}} ->
            content_length(Sock, Length);
        {ok, http_eoh} ->
            Length
    end.
