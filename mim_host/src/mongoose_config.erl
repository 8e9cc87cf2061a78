%% @doc Test host: MongooseIM's global option store.
%%
%% The processed options (the output of `mongoose_config_parser:parse_file/1',
%% as a map) live in one `persistent_term', as in MongooseIM: reads are cheap and
%% the store is replaced as a whole.
-module(mongoose_config).

%% API
-export([start/0,
         stop/0,
         get_config_path/0,
         lookup_opt/1,
         get_opt/2,
         get_opt/1]).

%% Test API
-export([set_opts/1,
         get_opts/0,
         erase_opts/0,
         set_opt/2,
         unset_opt/1]).

-type key() :: atom() | host_type_key().
-type host_type_key() :: {atom(), binary() | global}.

%% A top-level key followed by a key of each nested map
-type key_path() :: [key() | inner_key()].
-type inner_key() :: atom() | binary() | integer() | string() | tuple().

-type value() :: atom() | binary() | integer() | string() | [value()] | tuple() | map().

-export_type([host_type_key/0, key/0, key_path/0, value/0]).

%% Used when neither the application env nor the OS environment names a file.
-define(FALLBACK_CONFIG_PATH, "etc/mongooseim.toml").

%% @doc Parses the configured TOML file and stores the options.
-spec start() -> ok.
start() ->
    Parsed = mongoose_config_parser:parse_file(get_config_path()),
    set_opts(maps:from_list(Parsed)).

-spec stop() -> ok | {error, not_started}.
stop() ->
    stop_result(erase_opts()).

%% @doc The config file: the `mongooseim' application's `config' env, else
%% `EJABBERD_CONFIG_PATH', else a default relative path.
-spec get_config_path() -> string().
get_config_path() ->
    case application:get_env(mongooseim, config) of
        {ok, Path} -> Path;
        undefined -> path_from_os_env()
    end.

%% @doc Stores the options. The first step of the boot sequence after
%% parsing, so it also starts the host's processes (ejabberd_sup) unless
%% they run: a test boots with no start call of its own, as MongooseIM's
%% node has them running by then.
-spec set_opts(#{key() => value()}) -> ok.
set_opts(Opts) ->
    {ok, _} = ejabberd_sup:ensure_started(),
    store(Opts).

-spec get_opts() -> #{key() => value()}.
get_opts() ->
    persistent_term:get(?MODULE).

-spec erase_opts() -> boolean().
erase_opts() ->
    persistent_term:erase(?MODULE).

%% @doc Sets one option; on a path, every map above the last key must exist.
-spec set_opt(key() | key_path(), value()) -> ok.
set_opt(KeyOrPath, Value) ->
    store(change_at(get_opts(), as_path(KeyOrPath),
                    fun(Key, Map) -> maps:put(Key, Value, Map) end)).

-spec unset_opt(key() | key_path()) -> ok.
unset_opt(KeyOrPath) ->
    store(change_at(get_opts(), as_path(KeyOrPath), fun maps:remove/2)).

%% @doc `{ok, Value}' or `{error, not_found}' when a key on the path is missing.
-spec lookup_opt(key() | key_path()) -> {ok, value()} | {error, not_found}.
lookup_opt(KeyOrPath) ->
    case descend(get_opts(), as_path(KeyOrPath)) of
        {found, Value} -> {ok, Value};
        {missing, _Key} -> {error, not_found}
    end.

%% @doc The option, or Default when a key on the path is missing.
-spec get_opt(key() | key_path(), value()) -> value().
get_opt(KeyOrPath, Default) ->
    case descend(get_opts(), as_path(KeyOrPath)) of
        {found, Value} -> Value;
        {missing, _Key} -> Default
    end.

%% @doc The option; fails with `{badkey, Key}' when a key on the path is missing.
-spec get_opt(key() | key_path()) -> value().
get_opt(KeyOrPath) ->
    case descend(get_opts(), as_path(KeyOrPath)) of
        {found, Value} -> Value;
        {missing, Key} -> error({badkey, Key})
    end.

%%--------------------------------------------------------------------
%% Internals
%%--------------------------------------------------------------------

-spec stop_result(boolean()) -> ok | {error, not_started}.
stop_result(true) -> ok;
stop_result(false) -> {error, not_started}.

-spec path_from_os_env() -> string().
path_from_os_env() ->
    case os:getenv("EJABBERD_CONFIG_PATH") of
        false -> ?FALLBACK_CONFIG_PATH;
        Path -> Path
    end.

-spec store(#{key() => value()}) -> ok.
store(Opts) ->
    persistent_term:put(?MODULE, Opts).

%% A key is a path of one.
-spec as_path(key() | key_path()) -> key_path().
as_path(Path) when is_list(Path) -> Path;
as_path(Key) -> [Key].

%% Walks down nested maps; a value on the way that is no map fails as
%% maps:get/2 would.
-spec descend(value(), key_path()) -> {found, value()} | {missing, term()}.
descend(Value, []) ->
    {found, Value};
descend(Map, [Key | Rest]) when is_map(Map) ->
    case maps:find(Key, Map) of
        {ok, Inner} -> descend(Inner, Rest);
        error -> {missing, Key}
    end;
descend(NotAMap, [_ | _]) ->
    error({badmap, NotAMap}).

%% Applies Change(LastKey, Map) to the map that holds the path's last key,
%% rebuilding the maps above it.
-spec change_at(map(), key_path(), fun((term(), map()) -> map())) -> map().
change_at(Map, [LastKey], Change) ->
    Change(LastKey, Map);
change_at(Map, [Key | Rest], Change) ->
    maps:put(Key, change_at(maps:get(Key, Map), Rest, Change), Map).
