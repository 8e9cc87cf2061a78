%% @doc Entry point of the event pusher. Server hooks become events
%% (`mod_event_pusher_hook_translator'); each event runs the `push_event'
%% hook, where user modules may filter it or add metadata and the configured
%% backends (`mod_event_pusher_<backend>', priority 50) deliver it.
%%
%% The module's options map each configured backend to that backend's own
%% options. Backends are started as hard dependencies with those options,
%% so this module has no state of its own: it only subscribes the
%% translator's handlers, through gen_mod's `hooks/1'.
-module(mod_event_pusher).

%% No `-behaviour(gen_mod)': the behaviour module is MongooseIM's and is not on
%% the code path when this application is built on its own (the build treats
%% the "undefined behaviour" warning as an error). The callbacks are the same.

-include("mod_event_pusher_events.hrl").
-include("mongoose_config_spec.hrl").

%% Running an event through the backends
-export([push_event/2]).

%% gen_mod callbacks
-export([deps/2, start/2, stop/1, hooks/1, config_spec/0, supported_features/0]).

%% mongoose_module_metrics callback
-export([config_metrics/1]).

-type backend() :: http | push | rabbit | sns.
-type event() :: #user_status_event{} | #chat_event{} | #unack_msg_event{}.
-type metadata() :: #{atom() => atom() | binary() | number()}.
-type push_event_acc() :: #{acc := mongoose_acc:t(), metadata := metadata()}.
-type push_event_params() :: #{event := event()}.
-export_type([backend/0, event/0, metadata/0, push_event_acc/0, push_event_params/0]).

%%--------------------------------------------------------------------
%% Running an event through the backends
%%--------------------------------------------------------------------

%% @doc Runs the `push_event' hook for Event (hook accumulator
%% `#{acc => Acc, metadata => #{}}', params `#{event => Event}') and gives
%% back the mongoose_acc it ends with: backends may have written to its
%% `event_pusher' namespace.
-spec push_event(mongoose_acc:t(), event()) -> mongoose_acc:t().
push_event(Acc, Event) ->
    Outcome = mongoose_hooks:push_event(Acc, Event),
    maps:get(acc, Outcome).

%%--------------------------------------------------------------------
%% gen_mod callbacks
%%--------------------------------------------------------------------

%% @doc Every configured backend, started first with its own options; one
%% that cannot start keeps the event pusher from starting.
-spec deps(mongooseim:host_type(), gen_mod:module_opts()) -> gen_mod_deps:deps().
deps(_HostType, Opts) ->
    [{Module, maps:get(Backend, Opts), hard}
     || {Backend, Module} <- backends(), maps:is_key(Backend, Opts)].

%% @doc Nothing to set up: the backends are dependencies and the hook
%% handlers come from hooks/1.
-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(_HostType, _Opts) ->
    ok.

-spec stop(mongooseim:host_type()) -> ok.
stop(_HostType) ->
    ok.

%% @doc The handlers that turn server hooks into events; gen_mod adds them
%% once start/2 has returned and removes them before stop/1.
-spec hooks(mongooseim:host_type()) -> [gen_hook:hook_tuple()].
hooks(HostType) ->
    mod_event_pusher_hook_translator:hook_handlers(HostType).

%% @doc One subsection per backend, each described by its module.
-spec config_spec() -> mongoose_config_spec:config_section().
config_spec() ->
    #section{items = maps:from_list([{atom_to_binary(Backend, utf8), Module:config_spec()}
                                     || {Backend, Module} <- backends(), ships(Module)])}.

-spec supported_features() -> [atom()].
supported_features() ->
    [dynamic_domains].

%% @doc Which backends are configured, for MongooseIM's system metrics.
-spec config_metrics(mongooseim:host_type()) -> [{atom(), atom()}].
config_metrics(HostType) ->
    Opts = gen_mod:get_module_opts(HostType, ?MODULE),
    Configured = [Backend || {Backend, _} <- backends(), maps:is_key(Backend, Opts)],
    case Configured of
        [] -> [{none, none}];
        _ -> [{backend, Backend} || Backend <- Configured]
    end.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% MongooseIM's backends and their modules, in the order they start.
-spec backends() -> [{backend(), module()}].
backends() ->
    [{http, mod_event_pusher_http},
     {push, mod_event_pusher_push},
     {rabbit, mod_event_pusher_rabbit},
     {sns, mod_event_pusher_sns}].

%% Only backends whose module is in this build can be configured: a config
%% naming another is rejected at parse time (naming its TOML path) rather
%% than failing at start.
-spec ships(module()) -> boolean().
ships(Module) ->
    case code:ensure_loaded(Module) of
        {module, Module} -> erlang:function_exported(Module, config_spec, 0);
        {error, _} -> false
    end.
