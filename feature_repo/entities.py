from feast import Entity, ValueType

# Ids are the source's, as VARCHAR (never re-coded), so apps query with the ids they know.
user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.STRING,
    description="A user of the dataset",
)
item = Entity(
    name="item",
    join_keys=["item_id"],
    value_type=ValueType.STRING,
    description="An item of the dataset",
)
