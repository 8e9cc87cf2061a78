%% @doc RabbitMQ helpers for tests and benchmarks, with Erlang's amqp_client
%% (Debian's rabbitmq-server ships it; rebar.config.script puts it on the code
%% path of test runs): connect, declare/bind/purge/delete queues, consume what
%% arrived (routing key, properties, body bytes), check exchanges, and stop or
%% start the broker's application with rabbitmqctl for outage tests.
%%
%% The broker is the one scripts/services.sh starts: 127.0.0.1:5672,
%% guest/guest, node `rabbit@localhost' (or $RABBITMQ_NODENAME).
-module(ep_amqp).

-include_lib("amqp_client/include/amqp_client.hrl").

%% Connections
-export([start/0, connect/0, connect/1, close/1, is_up/0, wait_up/1]).
%% Queues
-export([declare_queue/3, temp_queue/1, bind/4, purge/2, delete_queue/2, queue_length/2]).
%% Consuming
-export([subscribe/2, recv/2, recv_until/2, get_all/2]).
%% Exchanges
-export([declare_exchange/4, exchange_exists/2, exchange_is/4, delete_exchange/2,
         list_exchanges/0]).
%% The broker
-export([rabbitmqctl/1, stop_app/0, start_app/1, add_vhost/1, delete_vhost/1,
         connections_on/1]).

-type conn() :: #{connection := pid(), channel := pid()}.
%% What a consumer received: `props' holds only the AMQP properties that were
%% set (an empty map: none, i.e. no content type, transient).
-type msg() :: #{exchange := binary(), routing_key := binary(), payload := binary(),
                 props := #{atom() => term()}, redelivered := boolean(),
                 consumer_tag := binary()}.
-export_type([conn/0, msg/0]).

-define(HOST, "127.0.0.1").
-define(PORT, 5672).
-define(CALL_TIMEOUT_MS, 10000).
-define(CTL_TIMEOUT_MS, 60000).

%%====================================================================
%% Connections
%%====================================================================

%% @doc Starts amqp_client (and what it needs).
-spec start() -> ok.
start() ->
    {ok, _} = application:ensure_all_started(amqp_client),
    ok.

-spec connect() -> conn().
connect() ->
    connect(#{}).

%% @doc A connection with one channel. Opts: `username', `password' (binaries),
%% `virtual_host', `port'.
-spec connect(map()) -> conn().
connect(Opts) ->
    ok = start(),
    case amqp_connection:start(params(Opts)) of
        {ok, Connection} ->
            {ok, Channel} = amqp_connection:open_channel(Connection),
            #{connection => Connection, channel => Channel};
        {error, Reason} ->
            error({amqp_connect_failed, Reason})
    end.

-spec close(conn()) -> ok.
close(#{connection := Connection}) ->
    %% The channel closes with its connection; either may be gone already.
    _ = catch amqp_connection:close(Connection),
    ok.

%% @doc True when a client can open a connection and a channel.
-spec is_up() -> boolean().
is_up() ->
    ok = start(),
    case amqp_connection:start(params(#{})) of
        {ok, Connection} ->
            Result = case catch amqp_connection:open_channel(Connection) of
                         {ok, _Channel} -> true;
                         _ -> false
                     end,
            _ = catch amqp_connection:close(Connection),
            Result;
        {error, _} ->
            false
    end.

-spec wait_up(timeout()) -> ok.
wait_up(TimeoutMs) ->
    ep_wait:until(fun is_up/0, TimeoutMs, #{name => rabbitmq_up, interval => 200}).

params(Opts) ->
    #amqp_params_network{host = ?HOST,
                         port = maps:get(port, Opts, ?PORT),
                         username = maps:get(username, Opts, <<"guest">>),
                         password = maps:get(password, Opts, <<"guest">>),
                         virtual_host = maps:get(virtual_host, Opts, <<"/">>),
                         connection_timeout = 5000}.

%%====================================================================
%% Queues
%%====================================================================

%% @doc Declares a durable queue (for outage tests it must survive the
%% broker's restart); `Args' as AMQP table entries, e.g.
%% `[{<<"x-queue-type">>, longstr, <<"quorum">>}]'.
-spec declare_queue(conn(), binary(), list()) -> binary().
declare_queue(#{channel := Ch}, Name, Args) ->
    #'queue.declare_ok'{queue = Q} =
        call(Ch, #'queue.declare'{queue = Name, durable = true, arguments = Args}),
    Q.

%% @doc A server-named exclusive queue: it goes away with the connection.
-spec temp_queue(conn()) -> binary().
temp_queue(#{channel := Ch}) ->
    #'queue.declare_ok'{queue = Q} = call(Ch, #'queue.declare'{exclusive = true}),
    Q.

-spec bind(conn(), binary(), binary(), binary()) -> ok.
bind(#{channel := Ch}, Queue, Exchange, RoutingKey) ->
    #'queue.bind_ok'{} = call(Ch, #'queue.bind'{queue = Queue, exchange = Exchange,
                                                routing_key = RoutingKey}),
    ok.

-spec purge(conn(), binary()) -> non_neg_integer().
purge(#{channel := Ch}, Queue) ->
    #'queue.purge_ok'{message_count = N} = call(Ch, #'queue.purge'{queue = Queue}),
    N.

-spec delete_queue(conn(), binary()) -> ok.
delete_queue(#{channel := Ch}, Queue) ->
    #'queue.delete_ok'{} = call(Ch, #'queue.delete'{queue = Queue}),
    ok.

%% @doc Messages ready in the queue (a passive declare).
-spec queue_length(conn(), binary()) -> non_neg_integer().
queue_length(#{channel := Ch}, Queue) ->
    #'queue.declare_ok'{message_count = N} =
        call(Ch, #'queue.declare'{queue = Queue, passive = true}),
    N.

%%====================================================================
%% Consuming
%%====================================================================

%% @doc Subscribes the calling process to `Queue' (auto-ack); deliveries
%% arrive in its mailbox and are read with recv/2 and recv_until/2.
-spec subscribe(conn(), binary()) -> binary().
subscribe(#{channel := Ch}, Queue) ->
    #'basic.consume_ok'{consumer_tag = Tag} =
        amqp_channel:subscribe(Ch, #'basic.consume'{queue = Queue, no_ack = true}, self()),
    receive
        #'basic.consume_ok'{consumer_tag = Tag} -> Tag
    after ?CALL_TIMEOUT_MS ->
            error({consume_ok_timeout, Queue})
    end.

%% @doc Exactly the next `N' deliveries, waiting for them at most `TimeoutMs'
%% in all; fails naming what did arrive.
-spec recv(non_neg_integer(), timeout()) -> [msg()].
recv(N, TimeoutMs) ->
    recv_n(N, deadline(TimeoutMs), []).

%% @doc Deliveries up to and including the first one for which `Pred' holds
%% (a marker sent after what a test expects not to arrive).
-spec recv_until(fun((msg()) -> boolean()), timeout()) -> [msg()].
recv_until(Pred, TimeoutMs) ->
    recv_until(Pred, deadline(TimeoutMs), []).

%% @doc Every message the queue holds now, fetched one by one (basic.get,
%% acknowledged).
-spec get_all(conn(), binary()) -> [msg()].
get_all(#{channel := Ch} = Conn, Queue) ->
    case call(Ch, #'basic.get'{queue = Queue, no_ack = true}) of
        {#'basic.get_ok'{exchange = X, routing_key = RK, redelivered = Re}, #amqp_msg{} = M} ->
            [msg(X, RK, Re, <<>>, M) | get_all(Conn, Queue)];
        #'basic.get_empty'{} ->
            []
    end.

recv_n(0, _Deadline, Acc) ->
    lists:reverse(Acc);
recv_n(N, Deadline, Acc) ->
    receive
        {#'basic.deliver'{}, #amqp_msg{}} = D -> recv_n(N - 1, Deadline, [to_msg(D) | Acc])
    after remaining(Deadline) ->
            error({amqp_recv_timeout, #{missing => N, received => lists:reverse(Acc)}})
    end.

recv_until(Pred, Deadline, Acc) ->
    receive
        {#'basic.deliver'{}, #amqp_msg{}} = D ->
            Msg = to_msg(D),
            case Pred(Msg) of
                true -> lists:reverse([Msg | Acc]);
                false -> recv_until(Pred, Deadline, [Msg | Acc])
            end
    after remaining(Deadline) ->
            error({amqp_recv_timeout, #{waiting_for => marker, received => lists:reverse(Acc)}})
    end.

to_msg({#'basic.deliver'{exchange = X, routing_key = RK, redelivered = Re, consumer_tag = T},
        #amqp_msg{} = M}) ->
    msg(X, RK, Re, T, M).

msg(Exchange, RoutingKey, Redelivered, Tag, #amqp_msg{props = Props, payload = Payload}) ->
    #{exchange => Exchange, routing_key => RoutingKey, payload => Payload,
      props => props(Props), redelivered => Redelivered, consumer_tag => Tag}.

%% The properties that are set, by name.
props(#'P_basic'{} = Props) ->
    Values = tl(tuple_to_list(Props)),
    maps:from_list([{K, V} || {K, V} <- lists:zip(record_info(fields, 'P_basic'), Values),
                              V =/= undefined]).

%%====================================================================
%% Exchanges
%%====================================================================

%% @doc Declares an exchange (not auto-deleted, not internal).
-spec declare_exchange(conn(), binary(), binary(), boolean()) -> ok.
declare_exchange(#{channel := Ch}, Name, Type, Durable) ->
    #'exchange.declare_ok'{} =
        call(Ch, #'exchange.declare'{exchange = Name, type = Type, durable = Durable}),
    ok.

%% @doc Whether the exchange exists (a passive declare, on a channel of its
%% own: a missing exchange closes the channel).
-spec exchange_exists(conn(), binary()) -> boolean().
exchange_exists(#{connection := Connection}, Name) ->
    with_channel(Connection, fun(Ch) ->
                                     call(Ch, #'exchange.declare'{exchange = Name, passive = true})
                             end) =:= {ok, #'exchange.declare_ok'{}}.

%% @doc Whether the exchange exists with this type and durability: the broker
%% accepts a declaration of an existing exchange only when it is equivalent.
-spec exchange_is(conn(), binary(), binary(), boolean()) -> boolean().
exchange_is(Conn = #{connection := Connection}, Name, Type, Durable) ->
    exchange_exists(Conn, Name) andalso
        with_channel(Connection,
                     fun(Ch) -> call(Ch, #'exchange.declare'{exchange = Name, type = Type,
                                                             durable = Durable})
                     end) =:= {ok, #'exchange.declare_ok'{}}.

-spec delete_exchange(conn(), binary()) -> ok.
delete_exchange(#{channel := Ch}, Name) ->
    #'exchange.delete_ok'{} = call(Ch, #'exchange.delete'{exchange = Name}),
    ok.

%% @doc The exchanges of vhost "/" as the broker lists them:
%% `#{Name => {Type, Durable}}'.
-spec list_exchanges() -> #{binary() => {binary(), boolean()}}.
list_exchanges() ->
    {ok, Out} = rabbitmqctl(["-q", "list_exchanges", "--no-table-headers",
                             "name", "type", "durable"]),
    Lines = binary:split(Out, <<"\n">>, [global, trim_all]),
    maps:from_list([begin
                        [Name, Type, Durable] = binary:split(Line, <<"\t">>, [global]),
                        {Name, {Type, Durable =:= <<"true">>}}
                    end || Line <- Lines]).

with_channel(Connection, Fun) ->
    {ok, Ch} = amqp_connection:open_channel(Connection),
    try
        {ok, Fun(Ch)}
    catch
        exit:Reason -> {error, Reason}
    after
        catch amqp_channel:close(Ch)
    end.

%%====================================================================
%% The broker
%%====================================================================

%% @doc Runs rabbitmqctl against the test broker's node (as
%% scripts/services.sh does, all on the loopback interface).
-spec rabbitmqctl([string()]) -> {ok, binary()} | {error, {integer(), binary()}}.
rabbitmqctl(Args) ->
    Exe = case os:find_executable("rabbitmqctl") of
              false -> "/usr/sbin/rabbitmqctl";
              Path -> Path
          end,
    Env = [{"RABBITMQ_NODENAME", os:getenv("RABBITMQ_NODENAME", "rabbit@localhost")},
           {"ERL_EPMD_ADDRESS", "127.0.0.1"},
           {"RABBITMQ_CTL_ERL_ARGS", "-kernel inet_dist_use_interface {127,0,0,1}"}],
    Port = open_port({spawn_executable, Exe},
                     [{args, Args}, {env, Env}, exit_status, binary, stderr_to_stdout,
                      use_stdio, hide]),
    collect_port(Port, deadline(?CTL_TIMEOUT_MS), []).

%% @doc Stops the broker's application (its node stays up): every client
%% connection is closed and new ones are refused until start_app/1.
-spec stop_app() -> ok.
stop_app() ->
    {ok, _} = rabbitmqctl(["-q", "stop_app"]),
    ok.

%% @doc Starts it again and waits until a client can connect.
-spec start_app(timeout()) -> ok.
start_app(TimeoutMs) ->
    {ok, _} = rabbitmqctl(["-q", "start_app"]),
    wait_up(TimeoutMs).

%% @doc Creates a vhost (if missing) where guest may do everything: a place
%% of its own for a case that counts connections or exchanges.
-spec add_vhost(binary()) -> ok.
add_vhost(VHost) ->
    V = binary_to_list(VHost),
    case rabbitmqctl(["-q", "add_vhost", V]) of
        {ok, _} -> ok;
        {error, {_, Out}} -> nomatch =/= binary:match(Out, <<"already exists">>)
                                 orelse error({add_vhost_failed, VHost, Out})
    end,
    {ok, _} = rabbitmqctl(["-q", "set_permissions", "-p", V, "guest", ".*", ".*", ".*"]),
    ok.

-spec delete_vhost(binary()) -> ok.
delete_vhost(VHost) ->
    _ = rabbitmqctl(["-q", "delete_vhost", binary_to_list(VHost)]),
    ok.

%% @doc How many client connections the broker has on the vhost.
-spec connections_on(binary()) -> non_neg_integer().
connections_on(VHost) ->
    {ok, Out} = rabbitmqctl(["-q", "list_connections", "--no-table-headers", "vhost"]),
    length([L || L <- binary:split(Out, <<"\n">>, [global, trim_all]), L =:= VHost]).

collect_port(Port, Deadline, Acc) ->
    receive
        {Port, {data, Data}} ->
            collect_port(Port, Deadline, [Acc, Data]);
        {Port, {exit_status, 0}} ->
            {ok, iolist_to_binary(Acc)};
        {Port, {exit_status, Status}} ->
            {error, {Status, iolist_to_binary(Acc)}}
    after remaining(Deadline) ->
            catch port_close(Port),
            error({rabbitmqctl_timeout, iolist_to_binary(Acc)})
    end.

%%====================================================================
%% Helpers
%%====================================================================

call(Ch, Method) ->
    amqp_channel:call(Ch, Method).

deadline(TimeoutMs) ->
    erlang:monotonic_time(millisecond) + TimeoutMs.

remaining(Deadline) ->
    max(0, Deadline - erlang:monotonic_time(millisecond)).
