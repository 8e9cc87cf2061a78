%% @doc (ours) The `privacy' options of mod_event_pusher_push: what of a
%% message a notification may carry. They apply to the notification's
%% fields after the plugin prepared them and before anyone sends them, so
%% the pubsub publish IQ and the `push_notifications' hook (MongoosePush)
%% both see the same, whatever the plugin.
%%
%% ```
%% [modules.mod_event_pusher.push.privacy]
%%   body = "replace"         # "keep" (default) | "omit" | "replace"
%%   body_text = "New message" # with "replace" only, and then required
%%   sender = "omit"          # "keep" (default) | "omit"
%% '''
%% The defaults keep MongooseIM's notifications unchanged.
-module(mod_event_pusher_push_privacy).

-include("mongoose_config_spec.hrl").

-export([config_spec/0, process_privacy/1, redact/2]).

-type body() :: keep | omit | replace.
-type sender() :: keep | omit.
-type opts() :: #{body := body(), sender := sender(), body_text => binary()}.
-export_type([opts/0]).

%% @doc path: modules.mod_event_pusher.push.privacy
-spec config_spec() -> mongoose_config_spec:config_section().
config_spec() ->
    #section{items = #{<<"body">> => #option{type = atom, validate = {enum, [keep, omit, replace]}},
                       <<"body_text">> => #option{type = binary, validate = non_empty},
                       <<"sender">> => #option{type = atom, validate = {enum, [keep, omit]}}},
             defaults = #{<<"body">> => keep, <<"sender">> => keep},
             process = fun ?MODULE:process_privacy/1,
             include = always}.

%% @doc `body_text' goes with `body = "replace"', and only with it.
-spec process_privacy(map()) -> opts().
process_privacy(#{body := replace} = Opts) when not is_map_key(body_text, Opts) ->
    error(#{what => privacy_body_text_missing,
            text => <<"privacy.body = \"replace\" needs privacy.body_text">>});
process_privacy(#{body := Body, body_text := _}) when Body =/= replace ->
    error(#{what => privacy_body_text_unused, body => Body,
            text => <<"privacy.body_text goes with privacy.body = \"replace\" only">>});
process_privacy(Opts) ->
    Opts.

%% @doc The notification's fields as the options allow them, in their order.
%% The sender is `last-message-sender' (and the hints plugin's
%% `message-sender' for Jingle messages); the body `last-message-body'.
-spec redact(opts(), mod_event_pusher_push_plugin:push_payload()) ->
          mod_event_pusher_push_plugin:push_payload().
redact(#{body := keep, sender := keep}, Payload) ->
    Payload;
redact(Opts, Payload) ->
    lists:filtermap(fun({Key, _} = Field) -> field(Opts, Key, Field) end, Payload).

field(#{sender := omit}, Key, _Field) when Key =:= <<"last-message-sender">>;
                                         Key =:= <<"message-sender">> ->
    false;
field(#{body := omit}, <<"last-message-body">>, _Field) ->
    false;
field(#{body := replace, body_text := Text}, <<"last-message-body">> = Key, _Field) ->
    {true, {Key, Text}};
field(_Opts, _Key, _Field) ->
    true.
