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

-define(DEFAULT_CONFIG_PATH, "etc/mongooseim.toml").

%% @doc Parses the configured TOML file and stores the options.
-spec start() -> ok.
start() ->
    Opts = mongoose_config_parser:parse_file(get_config_path()),
    set_opts(maps:from_list(Opts)).

-spec stop() -> ok | {error, not_started}.
stop() ->
    case erase_opts() of
        true -> ok;
        false -> {error, not_started}
    end.

%% @doc The config file: the `mongooseim' application's `config' env, else
%% `EJABBERD_CONFIG_PATH', else a default relative path.
-spec get_config_path() -> string().
get_config_path() ->
    Default = case os:getenv("EJABBERD_CONFIG_PATH") of
                  false -> ?DEFAULT_CONFIG_PATH;
                  Path -> Path
              end,
    application:get_env(mongooseim, config, Default).

%% @doc Stores the options. The first step of the boot sequence after
%% parsing, so it also starts the host's processes (ejabberd_sup) unless
%% they run: a test boots with no start call of its own, as MongooseIM's
%% node has them running by then.
-spec set_opts(#{key() => value()}) -> ok.
set_opts(Opts) ->
    {ok, _} = ejabberd_sup:ensure_started(),
    persistent_term:put(?MODULE, Opts).

-spec get_opts() -> #{key() => value()}.
get_opts() ->
    persistent_term:get(?MODULE).

-spec erase_opts() -> boolean().
erase_opts() ->
    persistent_term:erase(?MODULE).

-spec set_opt(key() | key_path(), value()) -> ok.
set_opt(KeyPath, Value) when is_list(KeyPath) ->
    persistent_term:put(?MODULE, set_nested(get_opts(), KeyPath, Value));
set_opt(Key, Value) ->
    set_opt([Key], Value).

-spec unset_opt(key() | key_path()) -> ok.
unset_opt(KeyPath) when is_list(KeyPath) ->
    persistent_term:put(?MODULE, unset_nested(get_opts(), KeyPath));
unset_opt(Key) ->
    unset_opt([Key]).

%% @doc `{ok, Value}' or `{error, not_found}' when a key on the path is missing.
-spec lookup_opt(key() | key_path()) -> {ok, value()} | {error, not_found}.
lookup_opt(Key) ->
    try get_opt(Key) of
        Value -> {ok, Value}
    catch
        error:{badkey, _} -> {error, not_found}
    end.

%% @doc The option, or Default when a key on the path is missing.
-spec get_opt(key() | key_path(), value()) -> value().
get_opt(Key, Default) ->
    try
        get_opt(Key)
    catch
        error:{badkey, _} -> Default
    end.

%% @doc The option; fails with `{badkey, Key}' when a key on the path is missing.
-spec get_opt(key() | key_path()) -> value().
get_opt(KeyPath) when is_list(KeyPath) ->
    lists:foldl(fun maps:get/2, get_opts(), KeyPath);
get_opt(Key) ->
    get_opt([Key]).

%% Internal functions

set_nested(M, [Key], Value) ->
    M#{Key => Value};
set_nested(M, [Key | Path], Value) ->
    M#{Key => set_nested(maps:get(Key, M), Path, Value)}.

unset_nested(M, [Key]) ->
    maps:remove(Key, M);
unset_nested(M, [Key | Path]) ->
    M#{Key := unset_nested(maps:get(Key, M), Path)}.
