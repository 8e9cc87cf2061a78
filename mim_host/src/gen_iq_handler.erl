%% @doc The test host's `gen_iq_handler': IQ handlers per host type,
%% namespace and component (`ejabberd_local': IQs to the server's JID;
%% `ejabberd_sm': IQs to a user's bare JID), serving every domain of the
%% host type, as MongooseIM's lazy routing does. The handler's extra gets
%% `host_type'. The old per-domain API is there too.
-module(gen_iq_handler).

-export([add_iq_handler_for_domain/6, remove_iq_handler_for_domain/3,
         add_iq_handler/6, remove_iq_handler/3]).
%% test host: used by gen_iq_component
-export([lookup/3]).
%% test host: ejabberd_sup creates the table when it starts
-export([ensure_table/0]).

-include_lib("kernel/include/logger.hrl").

-define(TABLE, gen_iq_handler_table).

-type execution_type() :: mongoose_iq_handler:execution_type().
-export_type([execution_type/0]).

-spec add_iq_handler_for_domain(mongooseim:host_type(), binary(), module(),
                                mongoose_iq_handler:handler_fn(), map(), execution_type()) ->
          ok | {error, already_registered}.
add_iq_handler_for_domain(HostType, Namespace, Component, HandlerFn, Extra, ExecutionType) ->
    ensure_table(),
    Key = {HostType, Namespace, Component},
    case ets:member(?TABLE, Key) of
        true ->
            ?LOG_WARNING(#{what => iq_already_registered, host_type => HostType,
                           namespace => Namespace, component => Component}),
            {error, already_registered};
        false ->
            Handler0 = mongoose_iq_handler:new(HandlerFn, Extra#{delete_on_unregister => false},
                                               ExecutionType),
            Handler = mongoose_iq_handler:add_extra(Handler0, #{host_type => HostType}),
            true = ets:insert(?TABLE, {Key, Handler}),
            ok
    end.

-spec remove_iq_handler_for_domain(mongooseim:host_type(), binary(), module()) ->
          ok | {error, not_registered}.
remove_iq_handler_for_domain(HostType, Namespace, Component) ->
    ensure_table(),
    case ets:take(?TABLE, {HostType, Namespace, Component}) of
        [{_, Handler}] -> mongoose_iq_handler:delete(Handler);
        [] -> {error, not_registered}
    end.

%% @doc Old API: a handler `Module:Function(From, To, Acc, IQ)' for one domain.
-spec add_iq_handler(module(), jid:lserver(), binary(), module(), atom(), execution_type()) ->
          ok.
add_iq_handler(Component, Domain, Namespace, Module, Function, ExecutionType) ->
    Fn = fun(Acc, From, To, IQ, _Extra) -> Module:Function(From, To, Acc, IQ) end,
    Extra = #{delete_on_unregister => true, module => Module, function => Function},
    Handler = mongoose_iq_handler:new(Fn, Extra, ExecutionType),
    gen_iq_component:register_iq_handler(Component, Domain, Namespace, Handler).

-spec remove_iq_handler(module(), jid:lserver(), binary()) -> ok.
remove_iq_handler(Component, Domain, Namespace) ->
    gen_iq_component:unregister_iq_handler(Component, Domain, Namespace).

-spec lookup(mongooseim:host_type(), binary(), module()) ->
          {ok, mongoose_iq_handler:t()} | error.
lookup(HostType, Namespace, Component) ->
    ensure_table(),
    case ets:lookup(?TABLE, {HostType, Namespace, Component}) of
        [{_, Handler}] -> {ok, Handler};
        [] -> error
    end.

-spec ensure_table() -> ok.
ensure_table() ->
    mim_host_lib:ensure_tables([{?TABLE, [named_table, public, set, {read_concurrency, true}]}]).
