%% @doc The Rust NIF (erlang/priv/event_pusher_nif.so): HTTP pools that queue, send,
%% retry and report in Rust. Contract: doc/architecture.md, "The NIF".
%% Every function returns in microseconds; results arrive as messages to the
%% pool's owner:
%%   {mongoose_event_pusher_nif, results, [{Tag, outcome()}]}
%%   {mongoose_event_pusher_nif, panic, Where :: binary()}
%%   {mongoose_event_pusher_nif, closed, Ref, #{dropped := non_neg_integer()}}
-module(mongoose_event_pusher_nif).

-export([http_pool_start/2, http_submit/2, pool_stats/1, pool_close/3]).
-export([sns_pool_start/2, sns_publish/2]).
-export([rabbit_pool_start/2, rabbit_declare_exchanges/4, rabbit_publish/2]).
-export([event_id/0, dead_letters/3]).
-export_type([pool/0, http_pool_config/0, tls_config/0, http_job/0, outcome/0,
              stats/0]).

-on_load(init/0).
-nifs([http_pool_start/2, http_submit/2, pool_stats/1, pool_close/3]).
-nifs([sns_pool_start/2, sns_publish/2]).
-nifs([rabbit_pool_start/2, rabbit_declare_exchanges/4, rabbit_publish/2]).
-nifs([event_id/0, dead_letters/3]).
-export_type([sns_pool_config/0, sns_job/0, sns_attribute/0]).
-export_type([rabbit_pool_config/0, rabbit_exchange/0, rabbit_message/0,
              rabbit_pool_event/0, rabbit_declare_result/0]).

-include_lib("kernel/include/logger.hrl").

%% A pool resource (a reference-like term); the pool closes when its owner dies.
-type pool() :: reference().
-type http_pool_config() :: #{base_url := binary(),
                              workers := pos_integer(),
                              request_timeout := non_neg_integer(),
                              queue_capacity := pos_integer(),
                              tls => tls_config()}.
-type tls_config() :: #{verify_mode => peer | selfsigned_peer | none,
                        cacertfile => binary(),
                        certfile => binary(),
                        keyfile => binary(),
                        password => binary(),
                        versions => [binary()],
                        server_name_indication => boolean()}.
%% {Tag, Path, Headers, Body, MaxRetries, RetryBaseMs, EventId[, Delivery]};
%% Delivery = {RetryOnTimeout, MaxAgeMs | infinity, RetryAfterMaxMs} (doc/http.md;
%% without it: false, infinity, 60000).
-type http_job() :: {Tag :: term(), Path :: binary(),
                     Headers :: [{binary(), binary()}], Body :: binary(),
                     MaxRetries :: non_neg_integer(),
                     RetryBaseMs :: non_neg_integer(), EventId :: binary()}
                  | {Tag :: term(), Path :: binary(),
                     Headers :: [{binary(), binary()}], Body :: binary(),
                     MaxRetries :: non_neg_integer(),
                     RetryBaseMs :: non_neg_integer(), EventId :: binary(),
                     {boolean(), pos_integer() | infinity, non_neg_integer()}}.
-type outcome() :: {response, Status :: 100..599, TimeUs :: non_neg_integer()}
                 | {error, Reason :: binary(), TimeUs :: non_neg_integer()}
                 | {published, TimeUs :: non_neg_integer(), Payload :: binary()}
                 | {timeout, TimeUs :: non_neg_integer()}
                 | {dropped, retries_exhausted | closed | overloaded | expired}.
%% Counters of any pool; each backend adds its own (published, requests, ...).
-type stats() :: #{atom() => non_neg_integer()}.

%% SNS (doc/architecture.md, "The sns pool"). endpoint: a URL, or a bare
%% host meaning https://Host. request_timeout: ms for one request, default 10000.
-type sns_pool_config() :: #{endpoint := binary(),
                             region := binary(),
                             access_key_id := binary(),
                             secret_access_key := binary(),
                             pool_size := pos_integer(),
                             retry_count := non_neg_integer(),
                             retry_time_ms := non_neg_integer(),
                             batching := boolean(),
                             queue_capacity := pos_integer(),
                             request_timeout => non_neg_integer()}.
%% {Tag, TopicArn, Fields, Metadata, Attributes, EventId}; Fields and Metadata
%% as for event_pusher_core::json ([{Key, Value}] or maps).
-type sns_job() :: {Tag :: term(), TopicArn :: binary(), Fields :: map() | list(),
                    Metadata :: map() | list(), [sns_attribute()], EventId :: binary()}
                 | {Tag :: term(), TopicArn :: binary(), Fields :: map() | list(),
                    Metadata :: map() | list(), [sns_attribute()], EventId :: binary(),
                    Group :: binary() | undefined}.
%% Group: the `MessageGroupId' on a FIFO topic (ARN ending in `.fifo'); ignored otherwise.
-type sns_attribute() :: {Name :: binary(), {string | binary | number, binary()}}.

%% RabbitMQ (doc/architecture.md, "The rabbit pool"). workers: AMQP
%% connections, one channel each; reconnect_delay and confirm_timeout in ms;
%% event_tag comes back with every pool-level event:
%%   {mongoose_event_pusher_nif, event, EventTag, rabbit_pool_event()}
%% and a declaration is answered with
%%   {mongoose_event_pusher_nif, declared, Ref, rabbit_declare_result()}
-type rabbit_pool_config() :: #{host := binary(),
                                port := 1..65535,
                                username := binary(),
                                password := binary(),
                                virtual_host := binary(),
                                confirms_enabled := boolean(),
                                reconnect_attempts := non_neg_integer(),
                                reconnect_delay := non_neg_integer(),
                                workers := pos_integer(),
                                queue_capacity := pos_integer(),
                                confirm_timeout := pos_integer(),
                                event_tag := term(),
                                tls => tls_config()}.
%% {Name, Type, Durable}, e.g. {<<"presence">>, <<"topic">>, false}
-type rabbit_exchange() :: {Name :: binary(), Type :: binary(), Durable :: boolean()}.
%% {Tag, Exchange, RoutingKey, Fields, Metadata}; the body is the JSON object
%% of Fields with Metadata merged over them (as for event_pusher_core::json).
-type rabbit_message() :: {Tag :: term(), Exchange :: binary(), RoutingKey :: binary(),
                           Fields :: map() | list(), Metadata :: map() | list()}
                        | {Tag :: term(), Exchange :: binary(), RoutingKey :: binary(),
                           Fields :: map() | list(), Metadata :: map() | list(),
                           Wire :: rabbit_wire()}.
%% (ours) {EventProperties, Persistent, false | UnroutableRetryMs}: see doc/rabbit.md.
-type rabbit_wire() :: {boolean(), boolean(), false | non_neg_integer()}.
-type rabbit_pool_event() :: {connection, opened | closed | {failed, Reason :: binary()}}
                           | {unroutable, Count :: pos_integer(), Exchange :: binary(),
                              RoutingKey :: binary(), ReplyText :: binary()}.
-type rabbit_declare_result() :: ok | {pending, Reason :: binary()}
                               | {error, [{Name :: binary(), Reason :: binary()}]}.

%%--------------------------------------------------------------------
%% NIFs (replaced when the library loads)
%%--------------------------------------------------------------------

-spec http_pool_start(Owner :: pid(), http_pool_config()) ->
          {ok, pool()} | {error, Reason :: binary()}.
http_pool_start(_Owner, _Config) ->
    erlang:nif_error({nif_not_loaded, nif_path()}).

-spec http_submit(pool(), http_job()) -> ok | {error, overloaded | closed | spool_full}.
http_submit(_Pool, _Job) ->
    erlang:nif_error({nif_not_loaded, nif_path()}).

-spec pool_stats(pool()) -> stats().
pool_stats(_Pool) ->
    erlang:nif_error({nif_not_loaded, nif_path()}).

-spec pool_close(pool(), Ref :: reference(), DrainMs :: non_neg_integer()) -> ok.
pool_close(_Pool, _Ref, _DrainMs) ->
    erlang:nif_error({nif_not_loaded, nif_path()}).

-spec sns_pool_start(Owner :: pid(), sns_pool_config()) ->
          {ok, pool()} | {error, Reason :: binary()}.
sns_pool_start(_Owner, _Config) ->
    erlang:nif_error({nif_not_loaded, nif_path()}).

-spec sns_publish(pool(), sns_job()) -> ok | {error, overloaded | closed | spool_full}.
sns_publish(_Pool, _Job) ->
    erlang:nif_error({nif_not_loaded, nif_path()}).

%% Returns at once; the pool connects in the background. DirtyIo (reads TLS files).
-spec rabbit_pool_start(Owner :: pid(), rabbit_pool_config()) ->
          {ok, pool()} | {error, Reason :: binary()}.
rabbit_pool_start(_Owner, _Config) ->
    erlang:nif_error({nif_not_loaded, nif_path()}).

%% Declares on a live connection (waiting for one at most TimeoutMs, which
%% also bounds the declarations); the owner gets the declared message.
-spec rabbit_declare_exchanges(pool(), Ref :: reference(), [rabbit_exchange()],
                               TimeoutMs :: non_neg_integer()) -> ok.
rabbit_declare_exchanges(_Pool, _Ref, _Exchanges, _TimeoutMs) ->
    erlang:nif_error({nif_not_loaded, nif_path()}).

-spec rabbit_publish(pool(), rabbit_message()) -> ok | {error, overloaded | closed | spool_full}.
rabbit_publish(_Pool, _Message) ->
    erlang:nif_error({nif_not_loaded, nif_path()}).

%% A new event ID: a UUID version 7, 36 bytes (see mongoose_event_pusher_event_id).
-spec event_id() -> binary().
event_id() ->
    erlang:nif_error({nif_not_loaded, nif_path()}).

%% A pool's dead letters: `list' (Limit) the oldest, as maps with the tag
%% given at submit; `replay' or `purge' the selected ones (all or by event
%% ID), returning how many.
-spec dead_letters(pool(), list, Limit :: non_neg_integer()) -> [map()];
                  (pool(), replay | purge, all | [binary()]) -> non_neg_integer().
dead_letters(_Pool, _Op, _Arg) ->
    erlang:nif_error({nif_not_loaded, nif_path()}).

%%--------------------------------------------------------------------
%% Loading
%%--------------------------------------------------------------------

-spec init() -> ok | {error, term()}.
init() ->
    Path = nif_path(),
    case erlang:load_nif(Path, 0) of
        ok ->
            ok;
        {error, Reason} = Error ->
            ?LOG_ERROR(#{what => event_pusher_nif_load_failed,
                         text => <<"Cannot load the event pusher NIF library">>,
                         path => Path, reason => Reason}),
            Error
    end.

%% priv/event_pusher_nif of our application; when the application is not
%% known to the code server (beams put on the path by hand), the priv
%% directory next to this module's ebin.
-spec nif_path() -> file:filename().
nif_path() ->
    filename:join(priv_dir(), "event_pusher_nif").

-spec priv_dir() -> file:filename().
priv_dir() ->
    case code:priv_dir(mongoose_event_pusher) of
        {error, bad_name} ->
            case code:which(?MODULE) of
                Beam when is_list(Beam) ->
                    filename:join(filename:dirname(filename:dirname(Beam)), "priv");
                _ ->
                    "priv"
            end;
        Dir ->
            Dir
    end.
