%% @doc (ours) How an HTTP request rides out a slow, throttling or down
%% endpoint: the options an http handler and mod_push_service_mongoosepush
%% share (`retry_on_timeout', `max_age', `retry_after_max'), the `Delivery'
%% element of `http_submit/2' they make, and the handler option naming a
%% header that carries the event's ID (`event_id_header').
-module(mod_event_pusher_http_delivery).

-include("mongoose_config_spec.hrl").

-export([config_items/0, delivery/1, check_header_name/1, with_id_header/3]).

%% What http_submit/2 takes last: {RetryOnTimeout, MaxAgeMs | infinity, RetryAfterMaxMs}.
-type delivery() :: {boolean(), pos_integer() | infinity, non_neg_integer()}.
-export_type([delivery/0]).

%% A `Retry-After' waits at most this long unless `retry_after_max' says otherwise.
-define(DEFAULT_RETRY_AFTER_MAX, 60000).
%% Headers the HTTP client writes itself, or that would change the request's framing.
-define(RESERVED_HEADERS, [<<"host">>, <<"content-length">>, <<"transfer-encoding">>,
                           <<"connection">>]).

%% @doc The delivery options, `{Key, Spec}'; none has a default in the parsed
%% config (the code applies them), so an existing config parses unchanged.
-spec config_items() -> [{binary(), mongoose_config_spec:config_node()}].
config_items() ->
    [{<<"retry_on_timeout">>, #option{type = boolean}},
     {<<"max_age">>, #option{type = integer, validate = positive}},
     {<<"retry_after_max">>, #option{type = integer, validate = non_negative}}].

%% @doc The `Delivery' of a request made with these options.
-spec delivery(map()) -> delivery().
delivery(Opts) ->
    {maps:get(retry_on_timeout, Opts, false), maps:get(max_age, Opts, infinity),
     maps:get(retry_after_max, Opts, ?DEFAULT_RETRY_AFTER_MAX)}.

%% @doc `event_id_header': an HTTP field name (a token), kept in lower case
%% as it goes on the wire; not one the client writes itself.
-spec check_header_name(binary()) -> binary().
check_header_name(Name) ->
    Lower = string:lowercase(Name),
    case is_token(Lower) andalso not lists:member(Lower, ?RESERVED_HEADERS) of
        true -> Lower;
        false -> error(#{what => invalid_event_id_header, value => Name,
                         text => <<"event_id_header must be an HTTP header name other than "
                                   "host, content-length, transfer-encoding or connection">>})
    end.

%% @doc The headers with `{Name, Id}' last, replacing any the callback gave
%% under that name; unchanged without a name.
-spec with_id_header(undefined | binary(), binary(), [{binary(), binary()}]) ->
          [{binary(), binary()}].
with_id_header(undefined, _Id, Headers) ->
    Headers;
with_id_header(Name, Id, Headers) ->
    [H || H = {N, _} <- Headers, string:lowercase(N) =/= Name] ++ [{Name, Id}].

-spec is_token(binary()) -> boolean().
is_token(<<>>) ->
    false;
is_token(Name) ->
    lists:all(fun(C) -> (C >= $a andalso C =< $z) orelse (C >= $0 andalso C =< $9)
                            orelse lists:member(C, "!#$%&'*+-.^_`|~")
              end, binary_to_list(Name)).
