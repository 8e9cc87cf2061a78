%% Shared pieces of the RabbitMQ benchmark rows: the broker's queue length
%% as the finish line, and the environment's knobs (the callers and the
%% result line are bench_callers').
-module(bench_rabbit_lib).

-export([wait_queue/4, int_env/2, env/2]).

%% @doc Polls the broker until Queue holds Expected messages. Returns the
%% native monotonic time it saw them, or {timeout, Count}.
-spec wait_queue(ep_amqp:conn(), binary(), non_neg_integer(), pos_integer()) ->
          {ok, integer()} | {timeout, non_neg_integer()}.
wait_queue(Conn, Queue, Expected, TimeoutMs) ->
    poll_queue(Conn, Queue, Expected, erlang:monotonic_time(millisecond) + TimeoutMs).

poll_queue(Conn, Queue, Expected, Deadline) ->
    Count = ep_amqp:queue_length(Conn, Queue),
    Now = erlang:monotonic_time(),
    if
        Count >= Expected ->
            {ok, Now};
        true ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> {timeout, Count};
                false ->
                    %% Short enough not to blur the end of a run of seconds.
                    receive after 2 -> ok end,
                    poll_queue(Conn, Queue, Expected, Deadline)
            end
    end.

%% @doc An integer from the environment, or Default.
-spec int_env(string(), integer()) -> integer().
int_env(Name, Default) ->
    list_to_integer(env(Name, integer_to_list(Default))).

-spec env(string(), string()) -> string().
env(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        V -> V
    end.
