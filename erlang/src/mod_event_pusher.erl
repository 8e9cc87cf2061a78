%% @doc The event pusher: turns server events into `push_event' hook runs that
%% the configured backends (`mod_event_pusher_<backend>') handle.
%%
%% Options are `#{Backend => BackendOpts}'; every configured backend is a hard
%% dependency started with its own options, so this module only registers the
%% hooks that produce events (see `mod_event_pusher_hook_translator').
-module(mod_event_pusher).

%% No `-behaviour(gen_mod)': the behaviour module is MongooseIM's and is not on
%% the code path when this application is built on its own (the build treats
%% the "undefined behaviour" warning as an error). The callbacks are the same.

-include("mod_event_pusher_events.hrl").
-include("mongoose_config_spec.hrl").

%% API
-export([push_event/2]).

%% gen_mod callbacks
-export([deps/2, start/2, stop/1, config_spec/0, supported_features/0]).

%% mongoose_module_metrics callback
-export([config_metrics/1]).

-type backend() :: http | push | rabbit | sns.
-type event() :: #user_status_event{} | #chat_event{} | #unack_msg_event{}.
-type metadata() :: #{atom() => atom() | binary() | number()}.
-type push_event_acc() :: #{acc := mongoose_acc:t(), metadata := metadata()}.
-type push_event_params() :: #{event := event()}.
-export_type([backend/0, event/0, metadata/0, push_event_acc/0, push_event_params/0]).

%%--------------------------------------------------------------------
%% API
%%--------------------------------------------------------------------

%% @doc Runs the `push_event' hook for Event and returns the resulting
%% mongoose_acc (backends may have stored data in its `event_pusher' namespace).
-spec push_event(mongoose_acc:t(), event()) -> mongoose_acc:t().
push_event(Acc, Event) ->
    #{acc := ResultAcc} = mongoose_hooks:push_event(Acc, Event),
    ResultAcc.

%%--------------------------------------------------------------------
%% gen_mod callbacks
%%--------------------------------------------------------------------

-spec deps(mongooseim:host_type(), gen_mod:module_opts()) -> gen_mod_deps:deps().
deps(_HostType, Opts) ->
    [{backend_module(Backend), BackendOpts, hard}
     || {Backend, BackendOpts} <- lists:sort(maps:to_list(Opts))].

-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, _Opts) ->
    mod_event_pusher_hook_translator:add_hooks(HostType).

-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    mod_event_pusher_hook_translator:delete_hooks(HostType).

-spec config_spec() -> mongoose_config_spec:config_section().
config_spec() ->
    Items = [{atom_to_binary(Backend, utf8), (backend_module(Backend)):config_spec()}
             || Backend <- configurable_backends()],
    #section{items = maps:from_list(Items)}.

-spec supported_features() -> [atom()].
supported_features() ->
    [dynamic_domains].

%% @doc Reports which backends are configured (MongooseIM's system metrics).
-spec config_metrics(mongooseim:host_type()) -> [{atom(), atom()}].
config_metrics(HostType) ->
    case gen_mod:get_module_opts(HostType, ?MODULE) of
        Opts when map_size(Opts) =:= 0 -> [{none, none}];
        Opts -> [{backend, Backend} || Backend <- lists:sort(maps:keys(Opts))]
    end.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% MongooseIM's backends whose modules this build ships: a config naming a
%% backend that is not (yet) implemented is rejected at parse time, naming
%% its path, instead of failing at start.
-spec configurable_backends() -> [backend()].
configurable_backends() ->
    [Backend || Backend <- [http, push, rabbit, sns],
                is_available(backend_module(Backend))].

-spec is_available(module()) -> boolean().
is_available(Module) ->
    case code:ensure_loaded(Module) of
        {module, Module} -> erlang:function_exported(Module, config_spec, 0);
        {error, _} -> false
    end.

-spec backend_module(backend()) -> module().
backend_module(http) -> mod_event_pusher_http;
backend_module(push) -> mod_event_pusher_push;
backend_module(rabbit) -> mod_event_pusher_rabbit;
backend_module(sns) -> mod_event_pusher_sns.
