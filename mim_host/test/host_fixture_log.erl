%% @doc Fixture for mongoose_host_SUITE: an ordered log that fixture modules
%% write to, and hook handlers with recognisable behaviour.
-module(host_fixture_log).

-export([new/0, add/1, entries/0]).
-export([append_tag/3, stop_with_tag/3, stop_with_extra/3, crash/3, return_extra/3,
         return_params/3]).

-define(TABLE, ?MODULE).

%% @doc A fresh log owned by the calling process (the test case).
-spec new() -> ok.
new() ->
    case ets:whereis(?TABLE) of
        undefined -> ok;
        _ -> ets:delete(?TABLE)
    end,
    ets:new(?TABLE, [named_table, public, ordered_set]),
    ok.

-spec add(term()) -> ok.
add(Entry) ->
    ets:insert(?TABLE, {erlang:unique_integer([monotonic]), Entry}),
    ok.

-spec entries() -> [term()].
entries() ->
    [Entry || {_, Entry} <- ets:tab2list(?TABLE)].

%% @doc Appends `Extra''s `tag' to a list accumulator.
-spec append_tag(list(), map(), map()) -> {ok, list()}.
append_tag(Acc, _Params, #{tag := Tag}) ->
    {ok, Acc ++ [Tag]}.

-spec stop_with_tag(list(), map(), map()) -> {stop, list()}.
stop_with_tag(Acc, _Params, #{tag := Tag}) ->
    {stop, Acc ++ [Tag]}.

-spec stop_with_extra(term(), map(), map()) -> {stop, map()}.
stop_with_extra(_Acc, _Params, Extra) ->
    {stop, Extra}.

-spec crash(term(), map(), map()) -> no_return().
crash(_Acc, _Params, _Extra) ->
    error(fixture_crash).

-spec return_extra(term(), map(), map()) -> {ok, map()}.
return_extra(_Acc, _Params, Extra) ->
    {ok, Extra}.

-spec return_params(term(), map(), map()) -> {ok, map()}.
return_params(_Acc, Params, _Extra) ->
    {ok, Params}.
