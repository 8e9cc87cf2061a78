%% @doc The test host's `mongoose_acc': MongooseIM's accumulator, a map
%% carrying the stanza being processed (element, from/to JIDs, name, type),
%% the server and host type, and namespaced values set by modules.
%%
%% Values set with `set/3,4' are dropped by `strip/1,2'; values set with
%% `set_permanent/2,3,4' survive it.
-module(mongoose_acc).

-include("jlib.hrl").

-export([new/1, new/4]).
-export([ref/1, timestamp/1, lserver/1, host_type/1, element/1, to_jid/1, from_jid/1,
         packet/1, stanza_name/1, stanza_type/1, stanza_ref/1]).
-export([update_stanza/2, update/3, update/4]).
-export([get_statem_acc/1, set_statem_acc/2]).
-export([set/2, set/3, set/4, set_permanent/2, set_permanent/3, set_permanent/4, append/4,
         get_permanent_keys/1, get_permanent_fields/1,
         get/2, get/3, get/4, delete/2, delete/3, delete_many/3]).
-export([strip/1, strip/2]).

-type origin() :: xmpp_c2s | xmpp_s2s | xmpp_component | server | admin_api | client_api.
-type location() :: #{mfa := mfa(), line := non_neg_integer(), file := string()}.
-type stanza_metadata() :: #{element := exml:element(),
                             from_jid := jid:jid() | undefined,
                             to_jid := jid:jid() | undefined,
                             name := binary(),
                             type := binary() | undefined,
                             ref := reference()}.
-type ns_key() :: {NS :: any(), Key :: any()}.
-type ns_key_value() :: {NS :: any(), Key :: any(), Value :: any()}.
-type t() :: #{mongoose_acc := true,
               ref := reference(),
               timestamp := integer(),
               origin_pid := pid(),
               origin_location := location(),
               stanza := stanza_metadata() | undefined,
               lserver := jid:lserver(),
               host_type := binary() | undefined,
               non_strippable := [ns_key()],
               statem_acc := map(),
               origin := origin() | undefined,
               ns_key() => any()}.
-type new_acc_params() :: #{location := location(),
                            lserver := jid:lserver(),
                            element => exml:element() | undefined,
                            host_type => binary() | undefined,
                            from_jid => jid:jid() | undefined,
                            to_jid => jid:jid() | undefined,
                            statem_acc => map(),
                            origin => origin() | undefined}.
-type strip_params() :: #{lserver := jid:lserver(),
                          element := exml:element(),
                          host_type => binary() | undefined,
                          from_jid => jid:jid() | undefined,
                          to_jid => jid:jid() | undefined}.
-type stanza_params() :: #{element := exml:element(),
                           from_jid => jid:jid() | undefined,
                           to_jid => jid:jid() | undefined,
                           _ => _}.

-export_type([t/0, stanza_metadata/0, new_acc_params/0, strip_params/0, stanza_params/0,
              ns_key/0, ns_key_value/0]).

%% Keys that are the accumulator itself, kept by strip/1.
-define(BUILT_IN_KEYS, [mongoose_acc, ref, timestamp, origin_pid, origin_location, stanza,
                        lserver, host_type, statem_acc, non_strippable, origin]).

%%--------------------------------------------------------------------
%% Construction
%%--------------------------------------------------------------------

%% @doc `location' and `lserver' are required. With an `element', the stanza
%% metadata is derived: name and `type' from the element, `from_jid'/`to_jid'
%% from the params or else parsed from the element's `from'/`to' attributes.
-spec new(new_acc_params()) -> t().
new(#{location := Location, lserver := LServer} = Params) ->
    Optional = #{host_type => undefined, origin => undefined, statem_acc => new_statem_acc()},
    Given = maps:with(maps:keys(Optional), Params),
    (maps:merge(Optional, Given))#{mongoose_acc => true,
                                   ref => make_ref(),
                                   timestamp => erlang:system_time(microsecond),
                                   origin_pid => self(),
                                   origin_location => Location,
                                   lserver => LServer,
                                   stanza => initial_stanza(Params),
                                   non_strippable => []}.

-spec new(jid:jid(), jid:jid(), exml:element(), location()) -> t().
new(From, To, Packet, Location) ->
    new(#{location => Location, lserver => From#jid.lserver, element => Packet,
          from_jid => From, to_jid => To}).

%%--------------------------------------------------------------------
%% Built-in fields
%%--------------------------------------------------------------------

-spec ref(t()) -> reference().
ref(#{mongoose_acc := true, ref := Ref}) -> Ref.

-spec timestamp(t()) -> integer().
timestamp(#{mongoose_acc := true, timestamp := TS}) -> TS.

-spec lserver(t()) -> jid:lserver().
lserver(#{mongoose_acc := true, lserver := LServer}) -> LServer.

-spec host_type(t()) -> binary() | undefined.
host_type(#{mongoose_acc := true, host_type := HostType}) -> HostType.

-spec element(t()) -> exml:element() | undefined.
element(Acc) -> stanza_field(element, Acc).

-spec from_jid(t()) -> jid:jid() | undefined.
from_jid(Acc) -> stanza_field(from_jid, Acc).

-spec to_jid(t()) -> jid:jid() | undefined.
to_jid(Acc) -> stanza_field(to_jid, Acc).

-spec stanza_name(t()) -> binary() | undefined.
stanza_name(Acc) -> stanza_field(name, Acc).

%% @doc The stanza's `type' attribute, `undefined' if it has none.
-spec stanza_type(t()) -> binary() | undefined.
stanza_type(Acc) -> stanza_field(type, Acc).

-spec stanza_ref(t()) -> reference() | undefined.
stanza_ref(Acc) -> stanza_field(ref, Acc).

%% @doc `{From, To, Element}', or `undefined' without a stanza.
-spec packet(t()) -> {jid:jid(), jid:jid(), exml:element()} | undefined.
packet(#{mongoose_acc := true, stanza := undefined}) ->
    undefined;
packet(#{mongoose_acc := true, stanza := Stanza}) ->
    #{from_jid := From, to_jid := To, element := El} = Stanza,
    {From, To, El}.

%%--------------------------------------------------------------------
%% Stanza updates
%%--------------------------------------------------------------------

-spec update_stanza(stanza_params(), t()) -> t().
update_stanza(Params, #{mongoose_acc := true} = Acc) ->
    Acc#{stanza := stanza_from_params(Params)}.

-spec update(element | from_jid | to_jid, exml:element() | jid:jid(), t()) ->
          t() | {error, badarg}.
update(Field, Value, #{mongoose_acc := true, stanza := #{} = Stanza} = Acc) ->
    case stanza_change(Field, Value) of
        {ok, Changes} -> Acc#{stanza := maps:merge(Stanza, Changes)};
        error -> {error, badarg}
    end;
update(_Field, _Value, _Acc) ->
    {error, badarg}.

%% A new element brings its own name, type and stanza ref; a JID only itself.
-spec stanza_change(atom(), term()) -> {ok, map()} | error.
stanza_change(element, #xmlel{} = El) ->
    {ok, element_fields(El)};
stanza_change(JidField, Jid) when JidField =:= from_jid; JidField =:= to_jid ->
    {ok, #{JidField => Jid}};
stanza_change(_Field, _Value) ->
    error.

-spec update(jid:jid(), jid:jid(), exml:element(), t()) -> t().
update(From, To, Element, Acc) ->
    update_stanza(#{from_jid => From, to_jid => To, element => Element}, Acc).

-spec get_statem_acc(t()) -> map().
get_statem_acc(#{mongoose_acc := true, statem_acc := StatemAcc}) -> StatemAcc.

-spec set_statem_acc(map(), t()) -> t().
set_statem_acc(StatemAcc, #{mongoose_acc := true} = Acc) ->
    Acc#{statem_acc := StatemAcc}.

%%--------------------------------------------------------------------
%% Namespaced values
%%--------------------------------------------------------------------

-spec set([ns_key_value()], t()) -> t().
set(NSKVs, #{mongoose_acc := true} = Acc) ->
    maps:merge(Acc, maps:from_list([{{NS, K}, V} || {NS, K, V} <- NSKVs])).

-spec set(any(), [{any(), any()}], t()) -> t().
set(NS, KVs, #{mongoose_acc := true} = Acc) ->
    maps:merge(Acc, maps:from_list([{{NS, K}, V} || {K, V} <- KVs])).

-spec set(any(), any(), any(), t()) -> t().
set(NS, K, V, #{mongoose_acc := true} = Acc) ->
    Acc#{{NS, K} => V}.

-spec set_permanent([ns_key_value()], t()) -> t().
set_permanent(NSKVs, #{mongoose_acc := true} = Acc) ->
    set(NSKVs, add_permanent([{NS, K} || {NS, K, _} <- NSKVs], Acc)).

-spec set_permanent(any(), [{any(), any()}], t()) -> t().
set_permanent(NS, KVs, #{mongoose_acc := true} = Acc) ->
    set(NS, KVs, add_permanent([{NS, K} || {K, _} <- KVs], Acc)).

-spec set_permanent(any(), any(), any(), t()) -> t().
set_permanent(NS, K, V, #{mongoose_acc := true} = Acc) ->
    set(NS, K, V, add_permanent([{NS, K}], Acc)).

%% @doc Appends to a list value (a list is concatenated, a term prepended).
-spec append(any(), any(), any(), t()) -> t().
append(NS, K, Val, Acc) ->
    Old = get(NS, K, [], Acc),
    New = case is_list(Val) of
              true -> Old ++ Val;
              false -> [Val | Old]
          end,
    set(NS, K, New, Acc).

-spec get_permanent_keys(t()) -> [ns_key()].
get_permanent_keys(#{mongoose_acc := true, non_strippable := Keys}) -> Keys.

-spec get_permanent_fields(t()) -> [ns_key_value()].
get_permanent_fields(Acc) ->
    lists:map(fun({NS, K} = Key) -> {NS, K, maps:get(Key, Acc)} end, get_permanent_keys(Acc)).

-spec get(any(), t()) -> [{any(), any()}].
get(NS, #{mongoose_acc := true} = Acc) ->
    InNamespace = maps:fold(fun({Namespace, K}, V, Found) when Namespace =:= NS -> [{K, V} | Found];
                               (_OtherKey, _V, Found) -> Found
                            end, [], Acc),
    lists:reverse(InNamespace).

-spec get(any(), any(), t()) -> any().
get(NS, K, #{mongoose_acc := true} = Acc) ->
    maps:get({NS, K}, Acc).

-spec get(any(), any(), any(), t()) -> any().
get(NS, K, Default, #{mongoose_acc := true} = Acc) ->
    maps:get({NS, K}, Acc, Default).

-spec delete(any(), any(), t()) -> t().
delete(NS, K, Acc) ->
    delete_many(NS, [K], Acc).

-spec delete_many(any(), [any()], t()) -> t().
delete_many(NS, Keys, #{mongoose_acc := true} = Acc) ->
    lists:foldl(fun(K, AccIn) -> forget({NS, K}, AccIn) end, Acc, Keys).

%% Removes the value and, if it was permanent, its permanence.
-spec forget(ns_key(), t()) -> t().
forget(Key, #{non_strippable := Permanent} = Acc) ->
    (maps:remove(Key, Acc))#{non_strippable := lists:delete(Key, Permanent)}.

-spec delete(any(), t()) -> t().
delete(NS, Acc) ->
    delete_many(NS, [K || {K, _} <- get(NS, Acc)], Acc).

%%--------------------------------------------------------------------
%% Strip
%%--------------------------------------------------------------------

%% @doc Keeps the built-in fields and permanent values only (the statem
%% accumulator is reset).
-spec strip(t()) -> t().
strip(#{mongoose_acc := true, non_strippable := Permanent} = Acc) ->
    Kept = maps:with(?BUILT_IN_KEYS ++ Permanent, Acc),
    set_statem_acc(new_statem_acc(), Kept).

%% @doc strip/1, then the accumulator moves to the server, host type and
%% stanza of `Params'.
-spec strip(strip_params(), t()) -> t().
strip(#{lserver := LServer} = Params, Acc) ->
    Moved = (strip(Acc))#{lserver := LServer, host_type := maps:get(host_type, Params, undefined)},
    update_stanza(Params, Moved).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec stanza_field(atom(), t()) -> term().
stanza_field(Field, #{mongoose_acc := true, stanza := #{} = Stanza}) ->
    maps:get(Field, Stanza);
stanza_field(_Field, #{mongoose_acc := true}) ->
    undefined.

-spec stanza_from_params(stanza_params() | new_acc_params()) -> stanza_metadata().
stanza_from_params(#{element := #xmlel{} = El} = Params) ->
    (element_fields(El))#{from_jid => jid_from_params(from_jid, <<"from">>, Params),
                          to_jid => jid_from_params(to_jid, <<"to">>, Params)}.

-spec element_fields(exml:element()) -> map().
element_fields(#xmlel{name = Name} = El) ->
    #{element => El, name => Name, type => exml_query:attr(El, <<"type">>), ref => make_ref()}.

%% An accumulator made without an element has no stanza yet.
-spec initial_stanza(new_acc_params()) -> stanza_metadata() | undefined.
initial_stanza(#{element := #xmlel{}} = Params) -> stanza_from_params(Params);
initial_stanza(_Params) -> undefined.

-spec jid_from_params(from_jid | to_jid, binary(), map()) -> jid:jid().
jid_from_params(Key, AttrName, #{element := El} = Params) ->
    case maps:find(Key, Params) of
        {ok, Jid} -> Jid;
        error -> #jid{} = jid:from_binary(exml_query:attr(El, AttrName))
    end.

%% What mongoose_c2s_acc:new/0 returns in MongooseIM.
-spec new_statem_acc() -> map().
new_statem_acc() ->
    #{state_mod => #{}, actions => [], c2s_state => undefined, c2s_data => undefined,
      hard_stop => undefined, socket_send => []}.

-spec add_permanent([ns_key()], t()) -> t().
add_permanent(Keys, #{non_strippable := Permanent} = Acc) ->
    New = [K || K <- lists:usort(Keys), not lists:member(K, Permanent)],
    Acc#{non_strippable := New ++ Permanent}.
