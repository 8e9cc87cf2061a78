%% MongooseIM's config spec records, with the fields and defaults of its header.
-ifndef(MONGOOSEIM_CONFIG_SPEC_HRL).
-define(MONGOOSEIM_CONFIG_SPEC_HRL, true).

-record(section, {items = #{} :: #{binary() | default => term()},
                  validate_keys = any :: term(),
                  required = [] :: [binary()] | all,
                  validate = any :: term(),
                  format_items = map :: term(),
                  process = [] :: term(),
                  defaults = #{} :: #{binary() => term()},
                  wrap = default :: term(),
                  include = when_present :: always | when_present}).

-record(list, {items :: term(),
               validate = any :: term(),
               format_items = list :: term(),
               process = [] :: term(),
               wrap = default :: term()}).

-record(option, {type :: term(),
                 validate = any :: term(),
                 process = [] :: term(),
                 wrap = default :: term()}).

-endif.
